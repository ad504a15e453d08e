from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from deployments import services
from deployments.events import verify_chain
from deployments.models import DeploymentState, Event, Item
from deployments.permissions import PermissionDenied
from tests.factories import make_user


def _item(deployment, text):
    return Item.objects.get(deployment=deployment, text=text)


def test_deployment_is_a_snapshot_of_its_runbook(crew):
    deployment, _ = crew
    version = deployment.runbook_version
    step = version.phases.first().steps.first()
    step.items.update(text="Edited after the deployment was created")
    assert Item.objects.filter(deployment=deployment, text="Check 1.1").exists()
    assert not Item.objects.filter(deployment=deployment, text__startswith="Edited").exists()


def test_qa_ticks_own_step_and_it_is_recorded(crew):
    deployment, people = crew
    item = _item(deployment, "Check 2.1")  # step 2 belongs to the QA Lead
    updated = services.update_item(item.pk, people["qa"], revision=item.revision, checked=True, note="screenshot in JIRA-1")
    assert updated.checked and updated.done_by == people["qa"] and updated.note == "screenshot in JIRA-1"
    event = Event.objects.filter(deployment=deployment).order_by("-seq").first()
    assert event.action == "item.ticked"
    assert event.actor == people["qa"]
    assert event.before["checked"] is False and event.after["checked"] is True


def test_devops_may_not_tick_a_qa_step(crew):
    deployment, people = crew
    item = _item(deployment, "Check 2.1")
    with pytest.raises(PermissionDenied, match="QA Lead"):
        services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)
    item.refresh_from_db()
    assert not item.checked


def test_stale_revision_is_refused_and_reports_current_state(crew):
    deployment, people = crew
    item = _item(deployment, "Check 2.1")
    seen = item.revision
    services.update_item(item.pk, people["qa"], revision=seen, checked=True)
    with pytest.raises(services.StaleChange) as caught:
        services.update_item(item.pk, people["lead"], revision=seen, checked=False)
    assert caught.value.current.checked is True
    item.refresh_from_db()
    assert item.checked and item.done_by == people["qa"]


def test_undo_only_by_the_doer_or_the_lead(crew):
    deployment, people = crew
    qa2 = people["qa"]
    item = _item(deployment, "Check 2.2")
    item = services.update_item(item.pk, qa2, revision=item.revision, checked=True)
    # A second QA lead may tick QA items but may not undo someone else's tick.

    other = make_user("qa2")
    services.set_participant(deployment, people["lead"], other, role_names=["QA Lead"])
    with pytest.raises(PermissionDenied, match="undo"):
        services.update_item(item.pk, other, revision=item.revision, checked=False)
    item = services.update_item(item.pk, people["lead"], revision=item.revision, checked=False)
    assert not item.checked and item.done_by is None
    actions = list(Event.objects.filter(deployment=deployment, object_id=str(item.pk)).values_list("action", flat=True))
    assert actions == ["item.ticked", "item.unticked"]


def test_choice_must_be_one_of_the_options(crew):
    deployment, people = crew
    item = _item(deployment, "Smoke tests")
    with pytest.raises(services.InvalidChange, match="Success, Failed"):
        services.update_item(item.pk, people["po"], revision=item.revision, value="Maybe")
    updated = services.update_item(item.pk, people["po"], revision=item.revision, value="Success")
    assert updated.value == "Success"


def test_step_actuals_follow_items(crew):
    deployment, people = crew
    items = list(Item.objects.filter(deployment=deployment, step__title="Step 1").order_by("position"))
    for item in items:
        services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)
    step = items[0].step
    step.refresh_from_db()
    assert step.actual_start is not None and step.actual_end is not None
    first = Item.objects.get(pk=items[0].pk)
    services.update_item(first.pk, people["devops"], revision=first.revision, checked=False)
    step.refresh_from_db()
    assert step.actual_end is None and step.actual_start is not None


def test_illegal_state_transition_is_refused_with_words(crew):
    deployment, people = crew
    with pytest.raises(services.InvalidChange, match="draft cannot become completed"):
        services.change_state(deployment.pk, people["lead"], DeploymentState.COMPLETED)
    services.change_state(deployment.pk, people["lead"], DeploymentState.SCHEDULED)
    services.change_state(deployment.pk, people["lead"], DeploymentState.IN_PROGRESS)
    with pytest.raises(services.InvalidChange, match="Say why"):
        services.change_state(deployment.pk, people["lead"], DeploymentState.PAUSED)
    services.change_state(deployment.pk, people["lead"], DeploymentState.PAUSED, reason="DB replica lag")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED and deployment.started_at is not None
    with pytest.raises(PermissionDenied):
        services.change_state(deployment.pk, people["po"], DeploymentState.IN_PROGRESS)


def test_reanchor_moves_planned_times_not_actuals(crew):
    deployment, people = crew
    item = _item(deployment, "Check 1.1")
    services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)
    step = item.step
    step.refresh_from_db()
    old_t0, actual = deployment.planned_t0, step.actual_start
    old_planned = step.planned_start(old_t0)
    new_t0 = old_t0 + timedelta(minutes=45)
    services.reanchor_t0(deployment.pk, people["lead"], new_t0, reason="change freeze overran")
    deployment.refresh_from_db()
    step.refresh_from_db()
    assert deployment.planned_t0 == new_t0
    assert step.planned_start(deployment.planned_t0) == old_planned + timedelta(minutes=45)
    assert step.actual_start == actual
    event = Event.objects.filter(deployment=deployment, action="deployment.reanchored").get()
    assert "+45 min" in event.summary


def test_finished_deployment_refuses_ticks(crew):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        services.change_state(deployment.pk, people["lead"], state)
    services.change_state(deployment.pk, people["lead"], DeploymentState.ABORTED, reason="vendor outage")
    item = _item(deployment, "Check 1.1")
    with pytest.raises(services.InvalidChange, match="finished"):
        services.update_item(item.pk, people["lead"], revision=item.revision, checked=True)


def test_late_steps_are_recorded_once(crew):
    deployment, people = crew
    services.reanchor_t0(deployment.pk, people["lead"], timezone.now() - timedelta(hours=2), reason="started late")
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        services.change_state(deployment.pk, people["lead"], state)
    assert services.mark_late_steps() == 2  # both timed steps ended long ago
    assert services.mark_late_steps() == 0
    assert Event.objects.filter(deployment=deployment, action="step.late").count() == 2


# --- the event log ---------------------------------------------------------------------


def test_event_chain_verifies_and_names_the_first_broken_link(crew):
    deployment, people = crew
    item = _item(deployment, "Check 1.1")
    services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)
    report = verify_chain(deployment.pk)
    assert report.ok and report.count == Event.objects.filter(deployment=deployment).count()
    target = Event.objects.filter(deployment=deployment).order_by("seq")[2]
    with connection.cursor() as cursor:  # a superuser can get past the trigger; the chain still tells
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE deployments_event SET summary = 'nothing happened' WHERE id = %s", [target.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = verify_chain(deployment.pk)
    assert not report.ok and report.broken_at == target.seq
    assert "changed" in report.problem


@pytest.mark.parametrize("statement", ["UPDATE deployments_event SET summary = 'x'", "DELETE FROM deployments_event"])
def test_postgres_refuses_update_and_delete_of_events(crew, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


def test_event_seq_is_unique_per_deployment(crew):
    deployment, _ = crew
    event = Event.objects.filter(deployment=deployment).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(
            deployment=deployment,
            seq=event.seq,
            created_at=timezone.now(),
            actor_label="x",
            action="x",
            summary="x",
            hash="0" * 64,
        )
