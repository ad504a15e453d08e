"""A pipeline token is an actor with narrow rights, not a flag that skips the checks.

Each attack from the issue, through the real API: refused with a 403 and a plain JSON
message, and nothing changed — the line, the gate, the approval and the event log.
"""

import json

import pytest
from django.test import Client

from approvals import services
from approvals.models import Decision, Gate, GateRule, GateState, RequiredApproval
from checklists.models import ItemKind, TemplateItem
from deployments import actors
from deployments import services as deployment_services
from deployments.models import DeploymentRole, DeploymentState, Event, Item
from deployments.permissions import PermissionDenied
from tests.factories import make_deployment, make_user, make_version, staff_deployment


def _done(deployment, item, raw, body):
    return Client().post(
        f"/api/v1/deployments/{deployment.pk}/items/{item.pk}/done/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def _snapshot(item):
    item.refresh_from_db()
    return (item.checked, item.value, item.note, item.done_by_id, item.done_by_system, item.revision)


def _events(deployment):
    return Event.objects.filter(deployment=deployment).count()


def _role(deployment, name):
    return DeploymentRole.objects.get(deployment=deployment, name=name).pk


@pytest.fixture
def token(crew):
    deployment, people = crew
    _, raw = services.create_api_token(deployment, people["lead"], name="GitLab")
    return raw


def test_token_cannot_set_a_gate_line_to_go_while_the_gate_is_open(crew, token):
    deployment, _ = crew
    gate = Gate.objects.get(deployment=deployment)
    line = gate.item
    before, events = _snapshot(line), _events(deployment)
    response = _done(deployment, line, token, {"value": "GO"})
    assert response.status_code == 403
    assert "only its vote decides it" in response.json()["error"]
    assert _snapshot(line) == before and line.value == ""
    gate.refresh_from_db()
    assert gate.state == GateState.OPEN and gate.decision == ""
    assert _events(deployment) == events


def test_token_cannot_tick_a_required_approval_line_whose_approval_was_never_given(crew, token):
    deployment, people = crew
    line = Item.objects.get(deployment=deployment, text="Check 2.3")
    approval = RequiredApproval.objects.create(
        deployment=deployment, label="QA sign-off", item=line, role_id=_role(deployment, "QA Lead")
    )
    before, events = _snapshot(line), _events(deployment)
    response = _done(deployment, line, token, {})
    assert response.status_code == 403 and "kept by its own record" in response.json()["error"]
    assert _snapshot(line) == before and line.checked is False
    approval.refresh_from_db()
    assert not approval.is_given
    assert _events(deployment) == events
    # The approval itself still ticks it, as "Approvals".
    services.give_approval(approval.pk, people["qa"], statement="All suites green")
    line.refresh_from_db()
    assert line.checked and line.done_by_system == "Approvals"


def test_token_cannot_write_go_live_beside_a_rollback_decision(db):
    lead = make_user("lead")
    version = make_version()
    TemplateItem.objects.filter(step__phase__version=version, kind=ItemKind.GATE).update(options=["GO-LIVE", "ROLLBACK"])
    deployment = make_deployment(lead=lead, version=version)
    people = staff_deployment(deployment, lead)
    gate = Gate.objects.get(deployment=deployment)
    assert (gate.go_label, gate.no_go_label) == ("GO-LIVE", "ROLLBACK")
    services.configure_gate(gate.pk, lead, voter_role_ids=[_role(deployment, "QA Lead")], rule=GateRule.UNANIMOUS)
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, lead, state)
    services.cast_vote(gate.pk, people["qa"], Decision.NO_GO, reason="error budget burnt")
    line = Item.objects.get(pk=gate.item_id)
    assert line.value == "ROLLBACK" and line.done_by_system == "Gate decision"
    _, raw = services.create_api_token(deployment, lead, name="GitLab")
    before, events = _snapshot(line), _events(deployment)

    response = _done(deployment, line, raw, {"value": "GO-LIVE"})
    assert response.status_code == 403
    assert _snapshot(line) == before and line.value == "ROLLBACK"
    assert _events(deployment) == events


def test_token_ticks_plain_lines_only(crew, token):
    deployment, people = crew
    field = Item.objects.get(deployment=deployment, kind=ItemKind.FIELD)
    choice = Item.objects.get(deployment=deployment, kind=ItemKind.CHOICE)
    for line, body in ((field, {"value": "02:45"}), (choice, {"value": "Success"})):
        before = _snapshot(line)
        response = _done(deployment, line, token, body)
        assert response.status_code == 403 and "checklist lines only" in response.json()["error"]
        assert _snapshot(line) == before
    plain = Item.objects.get(deployment=deployment, text="Check 1.1")
    response = _done(deployment, plain, token, {"note": "job #812"})
    assert response.status_code == 200 and response.json()["checked"] is True
    # A line a person ticked keeps that person's evidence: the pipeline may not rewrite it.
    other = Item.objects.get(deployment=deployment, text="Check 1.2")
    deployment_services.update_item(other.pk, people["devops"], revision=other.revision, checked=True, note="by hand")
    before = _snapshot(other)
    response = _done(deployment, other, token, {"note": "job #813"})
    assert response.status_code == 403 and _snapshot(other) == before


def test_token_on_a_finished_deployment_is_refused_with_409(crew, token):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.ABORTED, reason="vendor outage")
    line = Item.objects.get(deployment=deployment, text="Check 1.1")
    before = _snapshot(line)
    response = _done(deployment, line, token, {})
    assert response.status_code == 409 and "finished (aborted)" in response.json()["error"]
    assert _snapshot(line) == before


# --- the rights of each system actor, straight at the service ------------------------------------


def test_each_internal_actor_gets_exactly_what_it_needs(crew):
    deployment, people = crew
    step1_line = Item.objects.get(deployment=deployment, text="Check 1.1")
    step2_line = Item.objects.get(deployment=deployment, text="Check 2.1")
    gate_line = Gate.objects.get(deployment=deployment).item
    run = actors.task_run(7, step1_line.step_id)
    # A task run ticks its own step's lines, not another step's, and never a gate line.
    deployment_services.update_item(step1_line.pk, run, revision=None, checked=True, note="Run #7: size=12")
    step1_line.refresh_from_db()
    assert step1_line.checked and step1_line.done_by_system == "Task run #7" and step1_line.done_by is None
    for actor, line, change in [
        (run, step2_line, {"checked": True}),
        (run, gate_line, {"value": "GO"}),
        (actors.APPROVALS, step2_line, {"checked": True}),
        (actors.GATE_DECISION, step2_line, {"checked": True}),
        (actors.incident("Incident INC-1 (SEV1)"), step2_line, {"checked": True}),
        (actors.ROLLOUT_CONTROLLER, gate_line, {"value": "GO"}),
        (actors.pipeline("ci"), step1_line, {"checked": False}),  # undoing what the task run did
    ]:
        before = _snapshot(line)
        with pytest.raises(PermissionDenied):
            deployment_services.update_item(line.pk, actor, revision=None, **change)
        assert _snapshot(line) == before
    # The pipeline may not move the deployment; a gate decision may only pause it.
    with pytest.raises(PermissionDenied):
        deployment_services.transition_state(deployment.pk, DeploymentState.SCHEDULED, actor=actors.pipeline("ci"))
    with pytest.raises(PermissionDenied):
        deployment_services.transition_state(deployment.pk, DeploymentState.ABORTED, actor=actors.GATE_DECISION, reason="x")
    # Only an incident opens a gate on Warroom's behalf.
    with pytest.raises(PermissionDenied):
        services.add_gate(deployment, actors.pipeline("ci"), title="Ship it?", voter_role_ids=[_role(deployment, "QA Lead")])
    gate = services.add_gate(
        deployment, actors.incident("Incident INC-1 (SEV1)"), title="Roll back?", voter_role_ids=[_role(deployment, "QA Lead")]
    )
    assert Event.objects.get(deployment=deployment, action="gate.added", object_id=str(gate.pk)).actor_label == (
        "Incident INC-1 (SEV1)"
    )
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.DRAFT
