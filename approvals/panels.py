"""The approvals panel of the war room: one loader, rendered for the page and for pushes
from the same partial of approvals/panel.html (registered in deployments.panels by approvals/apps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import timezone

from approvals import services
from approvals.models import SETTLED_GATE_STATES, Gate, GateState, RequiredApproval
from deployments.board import render_events
from deployments.models import Deployment, Participant
from deployments.screens import gate_people, people_roles

TEMPLATE = "approvals/panel.html"


@dataclass
class GateView:
    gate: Gate
    tally: object
    waiting_names: list
    voter_role_ids: list
    is_open: bool
    is_closed: bool

    @property
    def open_seconds(self):
        if not self.gate.opened_at:
            return None
        end = self.gate.decided_at or timezone.now()
        return int((end - self.gate.opened_at).total_seconds())


def load_approvals(deployment_id: int, board=None) -> dict:
    participants = (
        board.participants
        if board is not None
        else list(Participant.objects.filter(deployment_id=deployment_id).select_related("user").prefetch_related("roles"))
    )
    names = {p.user_id: (p.user.get_full_name() or p.user.username) for p in participants}
    people = people_roles(participants)
    gates = []
    for gate in (
        Gate.objects.filter(deployment_id=deployment_id)
        .select_related("decider_role", "item")
        .prefetch_related("voter_roles", "veto_roles", "condition_items", "votes__voter")
    ):
        voters = services.eligible_voters(gate, participants=participants)
        votes_tally = services.tally(gate, votes=gate.votes.all(), voters=voters)
        gates.append(
            GateView(
                gate=gate,
                tally=votes_tally,
                waiting_names=[names.get(uid, "?") for uid in votes_tally.waiting],
                voter_role_ids=[r.pk for r in gate.voter_roles.all()],
                is_open=gate.state == GateState.OPEN,
                is_closed=gate.state in SETTLED_GATE_STATES,
            )
        )
    for gv in gates:
        gv.people = gate_people(gv, people)  # the tally person by person, each once with their roles
    approvals = list(RequiredApproval.objects.filter(deployment_id=deployment_id).select_related("role", "approved_by"))
    return {
        "gates": gates,
        "open_gate": next((g for g in gates if not g.is_closed), None),
        "required_approvals": approvals,
        "missing_approvals": [a for a in approvals if not a.is_given],
    }


def render_approvals_push(deployment_id: int) -> list[str]:
    """Approvals panel and recent events. Not the whole board: a vote changes neither
    items nor steps (a decided gate's line is pushed by update_item itself)."""
    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "approvals": load_approvals(deployment_id)}
    return [render_to_string(f"{TEMPLATE}#approvals", context), render_events(deployment)]
