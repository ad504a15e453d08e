"""Gates: rules, veto, stale votes, overrides, and what a decision does."""

import pytest

from approvals import services
from approvals.models import Decision, Gate, GateRule, GateState, RequiredApproval, Vote
from deployments import services as deployment_services
from deployments.models import DeploymentRole, DeploymentState, Event, Item
from deployments.permissions import PermissionDenied


def role(deployment, name):
    return DeploymentRole.objects.get(deployment=deployment, name=name).pk


@pytest.fixture
def gate(crew):
    deployment, people = crew
    return Gate.objects.get(deployment=deployment)


def configure(gate, lead, **kwargs):
    deployment = gate.deployment
    defaults = {
        "voter_role_ids": [role(deployment, "QA Lead"), role(deployment, "Product Owner"), role(deployment, "DBA")],
        "rule": GateRule.UNANIMOUS,
    }
    return services.configure_gate(gate.pk, lead, **{**defaults, **kwargs})


def test_runbook_gate_becomes_an_open_gate_linked_to_its_line(crew):
    deployment, _ = crew
    gate = Gate.objects.get(deployment=deployment)
    assert gate.item.text == "Decision" and gate.state == GateState.OPEN
    assert (gate.go_label, gate.no_go_label) == ("GO", "NO-GO")


def test_unanimous_go_closes_the_gate_and_sets_its_line(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"])
    services.cast_vote(gate.pk, people["qa"], Decision.GO)
    services.cast_vote(gate.pk, people["po"], Decision.GO)
    gate.refresh_from_db()
    assert gate.state == GateState.OPEN  # the DBA has not voted
    services.cast_vote(gate.pk, people["dba"], Decision.GO, reason="replica in sync")
    gate.refresh_from_db()
    assert gate.state == GateState.CLOSED and gate.decision == Decision.GO
    assert "Unanimous GO (3 of 3)" in gate.decision_summary
    assert Item.objects.get(pk=gate.item_id).value == "GO"


def test_no_go_needs_a_reason_and_records_only_the_attempt(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"])
    events_before = Event.objects.filter(deployment=deployment).count()
    with pytest.raises(deployment_services.InvalidChange, match="needs a reason"):
        services.cast_vote(gate.pk, people["qa"], Decision.NO_GO)
    assert not Vote.objects.filter(gate=gate).exists()
    assert Event.objects.filter(deployment=deployment).count() == events_before


def test_non_voter_and_outsider_are_refused(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"])
    with pytest.raises(PermissionDenied, match="do not vote"):
        services.cast_vote(gate.pk, people["devops"], Decision.GO)
    with pytest.raises(Gate.DoesNotExist):
        services.cast_vote(gate.pk, people["outsider"], Decision.GO)
    assert not Vote.objects.filter(gate=gate).exists()


def test_quorum_two_of_three(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"], rule=GateRule.QUORUM, quorum=2)
    services.cast_vote(gate.pk, people["qa"], Decision.GO)
    services.cast_vote(gate.pk, people["dba"], Decision.NO_GO, reason="index build still running")
    gate.refresh_from_db()
    assert gate.state == GateState.OPEN
    services.cast_vote(gate.pk, people["po"], Decision.GO)
    gate.refresh_from_db()
    assert gate.decision == Decision.GO and "2 GO of 2 needed" in gate.decision_summary


def test_quorum_becomes_no_go_when_unreachable(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"], rule=GateRule.QUORUM, quorum=3)
    services.cast_vote(gate.pk, people["dba"], Decision.NO_GO, reason="lag")
    gate.refresh_from_db()
    assert gate.decision == Decision.NO_GO and "can no longer be reached" in gate.decision_summary


def test_per_role_quorum(crew, gate):
    deployment, people = crew
    qa_role = role(deployment, "QA Lead")
    configure(gate, people["lead"], rule=GateRule.QUORUM, quorum=1, role_quorum={str(qa_role): 1})
    services.cast_vote(gate.pk, people["po"], Decision.GO)
    gate.refresh_from_db()
    assert gate.state == GateState.OPEN  # one GO, but not from QA
    services.cast_vote(gate.pk, people["qa"], Decision.GO)
    gate.refresh_from_db()
    assert gate.decision == Decision.GO and "QA Lead 1/1" in gate.decision_summary


def test_decider_decides_after_hearing_others(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"], rule=GateRule.DECIDER, decider_role_id=role(deployment, "Product Owner"))
    services.cast_vote(gate.pk, people["qa"], Decision.NO_GO, reason="one flaky test")
    gate.refresh_from_db()
    assert gate.state == GateState.OPEN  # advisory
    services.cast_vote(gate.pk, people["po"], Decision.GO, reason="flaky test is known, ship")
    gate.refresh_from_db()
    assert gate.decision == Decision.GO and "Pat Owner (Product Owner) decided GO" in gate.decision_summary


def test_veto_stops_it_whatever_the_count(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"], rule=GateRule.QUORUM, quorum=1, veto_role_ids=[role(deployment, "DBA")])
    services.cast_vote(gate.pk, people["dba"], Decision.NO_GO, reason="migration would lock payments table")
    gate.refresh_from_db()
    assert gate.decision == Decision.NO_GO and gate.decision_summary.startswith("Veto by Dana Base")


def test_votes_can_change_until_close_and_count_once(crew, gate):
    deployment, people = crew
    configure(gate, people["lead"])
    services.cast_vote(gate.pk, people["qa"], Decision.NO_GO, reason="wait")
    gate.refresh_from_db()
    assert gate.decision == Decision.NO_GO  # unanimous: one NO-GO decides
    with pytest.raises(deployment_services.InvalidChange, match="closed"):
        services.cast_vote(gate.pk, people["qa"], Decision.GO)
    assert Vote.objects.filter(gate=gate).count() == 1


def test_evidence_change_makes_a_vote_stale(crew, gate):
    deployment, people = crew
    check = Item.objects.get(deployment=deployment, text="Check 2.1")
    configure(gate, people["lead"], condition_item_ids=[check.pk])
    gate.refresh_from_db()
    assert gate.state == GateState.WAITING
    with pytest.raises(deployment_services.InvalidChange, match="not opened"):
        services.cast_vote(gate.pk, people["po"], Decision.GO)
    check = deployment_services.update_item(check.pk, people["qa"], revision=check.revision, checked=True)
    gate.refresh_from_db()
    assert gate.state == GateState.OPEN
    services.cast_vote(gate.pk, people["po"], Decision.GO)
    deployment_services.update_item(check.pk, people["qa"], revision=check.revision, checked=False)  # evidence changes
    vote = Vote.objects.get(gate=gate, voter=people["po"])
    assert vote.stale
    assert Event.objects.filter(deployment=deployment, action="vote.stale").count() == 1
    gate.refresh_from_db()
    assert gate.state == GateState.WAITING
    tally = services.tally(gate)
    assert not tally.go and tally.stale == [vote]


def test_lead_closes_early_as_override_and_no_go_pauses(crew, gate):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    with pytest.raises(PermissionDenied):
        services.close_gate_early(gate.pk, people["po"], Decision.NO_GO, reason="x")
    with pytest.raises(deployment_services.InvalidChange, match="Say why"):
        services.close_gate_early(gate.pk, people["lead"], Decision.NO_GO, reason=" ")
    services.close_gate_early(gate.pk, people["lead"], Decision.NO_GO, reason="payment provider incident")
    gate.refresh_from_db()
    deployment.refresh_from_db()
    assert gate.decision == Decision.NO_GO and gate.overridden_by == people["lead"]
    assert "(override)" in gate.decision_summary
    assert deployment.state == DeploymentState.PAUSED
    assert Event.objects.filter(deployment=deployment, action="deployment.state", actor_label="Gate decision").exists()


def test_people_cannot_set_a_gate_line_directly(crew, gate):
    deployment, people = crew
    item = gate.item
    with pytest.raises(PermissionDenied, match="voting panel"):
        deployment_services.update_item(item.pk, people["lead"], revision=item.revision, value="GO")


# --- required approvals ------------------------------------------------------------------------


def test_missing_approval_blocks_start_and_says_which(crew):
    deployment, people = crew
    approval = RequiredApproval.objects.create(
        deployment=deployment, label="Security team approval", role_id=role(deployment, "QA Lead")
    )
    deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.SCHEDULED)
    with pytest.raises(deployment_services.InvalidChange, match="Missing approvals: Security team approval"):
        deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.IN_PROGRESS)
    with pytest.raises(PermissionDenied, match="QA Lead"):
        services.give_approval(approval.pk, people["po"], statement="ok")
    services.give_approval(approval.pk, people["qa"], statement="Pen test report reviewed")
    services.withdraw_approval(approval.pk, people["qa"], reason="new finding")
    with pytest.raises(deployment_services.InvalidChange, match="Missing approvals"):
        deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.IN_PROGRESS)
    services.give_approval(approval.pk, people["qa"], statement="Finding fixed and retested")
    deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.IN_PROGRESS)
    with pytest.raises(deployment_services.InvalidChange, match="started"):
        services.withdraw_approval(approval.pk, people["qa"])
    actions = list(Event.objects.filter(deployment=deployment, action__startswith="approval").values_list("action", flat=True))
    assert actions == ["approval.given", "approval.withdrawn", "approval.given"]


def test_approval_ticks_its_runbook_line_and_people_cannot_tick_it_directly(crew):
    deployment, people = crew
    line = Item.objects.get(deployment=deployment, text="Check 2.3")
    approval = RequiredApproval.objects.create(
        deployment=deployment, label="QA sign-off", item=line, role_id=role(deployment, "QA Lead")
    )
    with pytest.raises(PermissionDenied, match="approvals panel"):
        deployment_services.update_item(line.pk, people["qa"], revision=line.revision, checked=True)
    services.give_approval(approval.pk, people["qa"], statement="All suites green")
    line.refresh_from_db()
    assert line.checked and line.done_by_system == "Approvals" and line.note == "All suites green"
    services.withdraw_approval(approval.pk, people["qa"])
    line.refresh_from_db()
    assert not line.checked
