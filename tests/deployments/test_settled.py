"""Decisions stay settled: a finished deployment is read-only, completing with open work
needs an override with a reason, and resuming after a NO-GO needs a reason.

The crew's runbook (tests.factories.make_version): Step 1 (DevOps, Check 1.1–1.3),
Step 2 (QA, Check 2.1–2.3), Sign-off (Product Owner: a field, a choice, the gate line
"Decision"). So 8 lines besides the gate line, and one gate, "Sign-off: Decision".
"""

from datetime import timedelta

import pytest
from django.test import Client

from approvals import services as approvals
from approvals.models import Decision, Gate, GateRule, GateState, RequiredApproval, Vote
from deployments import services
from deployments.models import DeploymentRole, DeploymentState, Event, Item
from reports.sections import collect
from tests.factories import make_user


def _role(deployment, name):
    return DeploymentRole.objects.get(deployment=deployment, name=name).pk


def _start(deployment, lead):
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        services.change_state(deployment.pk, lead, state)


def _tick(deployment, text, who):
    item = Item.objects.get(deployment=deployment, text=text)
    return services.update_item(item.pk, who, revision=item.revision, checked=True)


def _client(user):
    client = Client()
    client.force_login(user)
    return client


# --- completing --------------------------------------------------------------------------------


def test_completing_with_open_work_is_refused_and_says_what_is_open(crew):
    deployment, people = crew
    _start(deployment, people["lead"])
    _tick(deployment, "Check 1.1", people["devops"])
    _tick(deployment, "Check 1.2", people["devops"])
    events = Event.objects.filter(deployment=deployment).count()
    with pytest.raises(services.OpenWork) as refused:
        services.change_state(deployment.pk, people["lead"], DeploymentState.COMPLETED)
    assert refused.value.open == ["6 of 8 checklist lines not done", "gate open: “Sign-off: Decision”"]
    assert "override" in str(refused.value)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_PROGRESS and deployment.finished_at is None
    assert Event.objects.filter(deployment=deployment).count() == events
    assert Gate.objects.get(deployment=deployment).state == GateState.OPEN


def test_completing_with_an_override_records_it_and_cancels_the_open_gate(crew):
    deployment, people = crew
    _start(deployment, people["lead"])
    services.change_state(
        deployment.pk, people["lead"], DeploymentState.COMPLETED, override_reason="verified by hand in the vendor console"
    )
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.COMPLETED
    event = Event.objects.filter(deployment=deployment, action="deployment.state").latest("seq")
    assert event.after["override"] == {
        "reason": "verified by hand in the vendor console",
        "open": ["8 of 8 checklist lines not done", "gate open: “Sign-off: Decision”"],
    }
    assert event.actor_id == people["lead"].pk
    gate = Gate.objects.get(deployment=deployment)
    assert gate.state == GateState.CANCELLED and gate.decision == ""
    assert "override: verified by hand in the vendor console" in gate.decision_summary
    cancelled = Event.objects.get(deployment=deployment, action="gate.cancelled")
    assert cancelled.seq == event.seq + 1 and cancelled.actor_label == "Warroom"


def test_completing_with_nothing_open_needs_no_override(crew):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    approvals.configure_gate(gate.pk, people["lead"], voter_role_ids=[_role(deployment, "QA Lead")], rule=GateRule.UNANIMOUS)
    _start(deployment, people["lead"])
    for n in (1, 2, 3):
        _tick(deployment, f"Check 1.{n}", people["devops"])
        _tick(deployment, f"Check 2.{n}", people["qa"])
    for kind, value in (("field", "02:45"), ("choice", "Success")):
        item = Item.objects.get(deployment=deployment, kind=kind)
        services.update_item(item.pk, people["po"], revision=item.revision, value=value)
    approvals.cast_vote(gate.pk, people["qa"], Decision.GO)
    assert services.open_work(deployment) == []
    services.change_state(deployment.pk, people["lead"], DeploymentState.COMPLETED)
    event = Event.objects.filter(deployment=deployment, action="deployment.state").latest("seq")
    assert event.after == {"state": "completed", "reason": ""}


def test_the_war_room_state_form_shows_what_is_open_and_takes_the_override(crew):
    deployment, people = crew
    _start(deployment, people["lead"])
    _tick(deployment, "Check 1.1", people["devops"])
    url = f"/deployments/{deployment.pk}/state/"
    lead = _client(people["lead"])
    page = lead.get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'class="complete-override"' in page
    form = lead.get(url, HTTP_HX_REQUEST="true")
    assert form.status_code == 200
    html = form.content.decode()
    assert "7 of 8 checklist lines not done" in html and "gate open: “Sign-off: Decision”" in html
    assert 'name="override_reason"' in html and 'name="confirm_override"' in html
    assert _client(people["qa"]).get(url).status_code == 403

    refused = lead.post(url, {"state": "completed"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and "7 of 8 checklist lines not done" in refused.content.decode()
    unconfirmed = lead.post(url, {"state": "completed", "override_reason": "done by hand"}, HTTP_HX_REQUEST="true")
    assert unconfirmed.status_code == 400
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_PROGRESS
    done = lead.post(
        url, {"state": "completed", "override_reason": "done by hand", "confirm_override": "1"}, HTTP_HX_REQUEST="true"
    )
    assert done.status_code == 204
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.COMPLETED


# --- a finished deployment is read-only ---------------------------------------------------------


@pytest.fixture
def completed(crew):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    approvals.configure_gate(
        gate.pk,
        people["lead"],
        voter_role_ids=[_role(deployment, "QA Lead"), _role(deployment, "Product Owner")],
        rule=GateRule.UNANIMOUS,
    )
    _start(deployment, people["lead"])
    _tick(deployment, "Check 1.1", people["devops"])
    services.change_state(deployment.pk, people["lead"], DeploymentState.COMPLETED, override_reason="rest done by hand")
    deployment.refresh_from_db()
    return deployment, people


def test_a_vote_after_completion_is_refused(completed):
    deployment, people = completed
    gate = Gate.objects.get(deployment=deployment)
    events = Event.objects.filter(deployment=deployment).count()
    with pytest.raises(services.DeploymentFinished, match="no more votes"):
        approvals.cast_vote(gate.pk, people["qa"], Decision.GO)
    response = _client(people["po"]).post(
        f"/deployments/{deployment.pk}/gates/{gate.pk}/vote/", {"choice": "no_go", "reason": "late"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400 and "finished (completed)" in response.content.decode()
    with pytest.raises(services.DeploymentFinished):
        approvals.close_gate_early(gate.pk, people["lead"], Decision.GO, reason="forgot")
    assert not Vote.objects.filter(gate=gate).exists()
    gate.refresh_from_db()
    assert gate.state == GateState.CANCELLED and gate.decision == ""
    assert Event.objects.filter(deployment=deployment).count() == events


def test_a_tick_after_completion_is_refused(completed):
    deployment, people = completed
    untouched = Item.objects.get(deployment=deployment, text="Check 1.2")
    ticked = Item.objects.get(deployment=deployment, text="Check 1.1")
    events = Event.objects.filter(deployment=deployment).count()
    with pytest.raises(services.DeploymentFinished, match="checklist is closed"):
        services.update_item(untouched.pk, people["devops"], revision=untouched.revision, checked=True)
    with pytest.raises(services.DeploymentFinished):
        services.update_item(ticked.pk, people["lead"], revision=ticked.revision, checked=False)
    response = _client(people["devops"]).post(
        f"/deployments/{deployment.pk}/items/{untouched.pk}/", {"checked": "1", "revision": "0"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    untouched.refresh_from_db()
    ticked.refresh_from_db()
    assert untouched.checked is False and untouched.revision == 0
    assert ticked.checked is True and ticked.done_by == people["devops"]
    assert Event.objects.filter(deployment=deployment).count() == events


def test_a_t0_move_after_completion_is_refused(completed):
    deployment, people = completed
    t0 = deployment.planned_t0
    with pytest.raises(services.DeploymentFinished, match="T-0 can no longer move"):
        services.reanchor_t0(deployment.pk, people["lead"], t0 + timedelta(minutes=30), reason="slipped")
    deployment.refresh_from_db()
    assert deployment.planned_t0 == t0


def test_approvals_and_other_edits_after_completion_are_refused_but_people_can_still_be_added(completed):
    deployment, people = completed
    approval = RequiredApproval.objects.create(deployment=deployment, label="Late approval", role_id=_role(deployment, "QA Lead"))
    with pytest.raises(services.DeploymentFinished, match="approvals are closed"):
        approvals.give_approval(approval.pk, people["qa"], statement="ok")
    with pytest.raises(services.DeploymentFinished):
        approvals.add_gate(deployment, people["lead"], title="After the fact", voter_role_ids=[_role(deployment, "QA Lead")])
    with pytest.raises(services.DeploymentFinished):
        services.add_contact(deployment, people["lead"], role_name=None, level=1, name="Late", phone="123")
    with pytest.raises(services.DeploymentFinished, match="state no longer changes"):
        services.change_state(deployment.pk, people["lead"], DeploymentState.ABORTED, reason="oops")
    approval.refresh_from_db()
    assert not approval.is_given and Gate.objects.filter(deployment=deployment).count() == 1
    # Sign-offs need the signing roles held: the lead may still staff them after the end.
    signer = make_user("signer")
    services.set_participant(deployment, people["lead"], signer, role_names=["QA Lead"])


# --- resuming after a NO-GO ---------------------------------------------------------------------


def test_resuming_after_a_no_go_needs_a_reason(crew):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    approvals.configure_gate(gate.pk, people["lead"], voter_role_ids=[_role(deployment, "QA Lead")], rule=GateRule.UNANIMOUS)
    _start(deployment, people["lead"])
    approvals.cast_vote(gate.pk, people["qa"], Decision.NO_GO, reason="smoke tests red")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED
    events = Event.objects.filter(deployment=deployment).count()
    with pytest.raises(services.InvalidChange, match="A NO-GO at “Sign-off: Decision” paused this deployment"):
        services.change_state(deployment.pk, people["lead"], DeploymentState.IN_PROGRESS)
    response = _client(people["lead"]).post(
        f"/deployments/{deployment.pk}/state/", {"state": "in_progress"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400 and "why it is safe to resume" in response.content.decode()
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED
    assert Event.objects.filter(deployment=deployment).count() == events
    page = _client(people["lead"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "why is it safe to resume?" in page  # the resume button asks for the reason
    services.change_state(
        deployment.pk, people["lead"], DeploymentState.IN_PROGRESS, reason="fix deployed, smoke tests green again"
    )
    event = Event.objects.filter(deployment=deployment, action="deployment.state").latest("seq")
    assert event.after == {"state": "in_progress", "reason": "fix deployed, smoke tests green again"}


def test_resuming_a_pause_without_a_no_go_needs_no_reason(crew):
    deployment, people = crew
    _start(deployment, people["lead"])
    services.change_state(deployment.pk, people["lead"], DeploymentState.PAUSED, reason="coffee")
    services.change_state(deployment.pk, people["lead"], DeploymentState.IN_PROGRESS)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.IN_PROGRESS


def test_the_report_says_a_gate_was_cancelled_not_open(completed):
    deployment, _ = completed
    section = next(s for s in collect(deployment) if s["key"] == "gates")
    [row] = next(t for t in section["tables"] if t["caption"] == "Go/no-go gates")["rows"]
    assert row[0] == "Sign-off: Decision" and row[3] == "cancelled"
    assert row[4].startswith("Cancelled undecided: the deployment was completed (override: rest done by hand)")
