"""Read-only views of a deployment for the screens people look at from afar or on the move.

The TV view (``/deployments/<id>/tv/``) and the phone view (``/deployments/<id>/me/``)
render from the same loaders as the war room (``board``, and the panels the other apps
registered in ``deployments.panels``: approvals, rollout, incidents); this module only
arranges what they load: who voted what at a gate, person by person; why the deployment
stopped, in words; how long it took against the plan (``deployments.clock``); and what
waits for one person. Nothing here changes a row.

A panel that is not registered is simply absent: its key is missing from the context,
and what would be read from it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deployments import hooks, panels
from deployments.board import board_context
from deployments.clock import clock
from deployments.models import DeploymentState, Event

# --- people ------------------------------------------------------------------------


@dataclass
class PersonVote:
    user_id: int
    name: str
    roles: list[str]
    vote: str  # "go", "no_go", "stale" or "waiting"
    reason: str = ""


def people_roles(participants) -> dict[int, dict]:
    """user id → {"name", "roles": [role name, …], "role_ids": {…}, "is_lead"}: one entry per person."""
    people = {}
    for p in participants:
        roles = list(p.roles.all())
        people[p.user_id] = {
            "name": p.user.get_full_name() or p.user.username,
            "roles": [r.name for r in roles],
            "role_ids": {r.pk for r in roles},
            "is_lead": p.is_lead,
        }
    return people


def gate_people(gate_view, people: dict[int, dict]) -> list[PersonVote]:
    """The gate's tally by person: each eligible voter once, with the voting roles they hold."""
    gate, votes = gate_view.gate, gate_view.tally
    voter_role_ids = set(gate_view.voter_role_ids)
    role_names = {r.pk: r.name for r in gate.voter_roles.all()}

    def roles_of(user_id):
        held = people.get(user_id, {}).get("role_ids", set()) & voter_role_ids
        return sorted(role_names[r] for r in held)

    def name_of(user):
        return people.get(user.pk, {}).get("name") or user.get_full_name() or user.username

    rows = [PersonVote(v.voter_id, name_of(v.voter), roles_of(v.voter_id), "go", v.reason) for v in votes.go]
    rows += [PersonVote(v.voter_id, name_of(v.voter), roles_of(v.voter_id), "no_go", v.reason) for v in votes.no_go]
    seen = {r.user_id for r in rows}
    rows += [
        PersonVote(v.voter_id, name_of(v.voter), roles_of(v.voter_id), "stale", v.reason)
        for v in votes.stale
        if v.voter_id not in seen
    ]
    seen = {r.user_id for r in rows}
    rows += [
        PersonVote(uid, people.get(uid, {}).get("name", "?"), roles_of(uid), "waiting")
        for uid in dict.fromkeys(votes.waiting)
        if uid not in seen
    ]
    order = {"no_go": 0, "go": 1, "stale": 2, "waiting": 3}
    return sorted(rows, key=lambda r: (order[r.vote], r.name.lower()))


# --- why it stopped ------------------------------------------------------------------


@dataclass
class Stop:
    kind: str  # "abort", "no_go", "sev1", "paused", "finished"
    title: str
    reason: str


def _state_events(deployment_id: int, limit: int = 20) -> list[Event]:
    return list(Event.objects.filter(deployment_id=deployment_id, action="deployment.state").order_by("-seq")[:limit])


def _last_reason(events, state: str) -> str:
    for event in events:
        after = event.after or {}
        if after.get("state") == state:
            return after.get("reason") or (after.get("override") or {}).get("reason") or ""
    return ""


def _last_resumed_at(events):
    return next((e.created_at for e in events if (e.after or {}).get("state") == DeploymentState.IN_PROGRESS), None)


def stop_reasons(deployment, *, rollout, approvals, incidents) -> list[Stop]:
    """Everything that stops the deployment now, worst first, each with its reason in words."""
    stops: list[Stop] = []
    if deployment.state in (DeploymentState.DRAFT, DeploymentState.SCHEDULED, DeploymentState.COMPLETED):
        return stops
    events = _state_events(deployment.pk)
    if deployment.state in (DeploymentState.ROLLED_BACK, DeploymentState.ABORTED):
        label = deployment.get_state_display()
        stops.append(Stop("finished", f"Deployment {label.lower()}", _last_reason(events, deployment.state) or label))
    for incident in incidents.get("open", []):
        if incident.severity == "sev1":
            stops.append(
                Stop("sev1", f"SEV1 INC-{incident.number}: {incident.title}", incident.impact or incident.get_status_display())
            )
    if rollout and rollout["plan"].state == "aborted":
        phase = rollout.get("rollback_phase")
        reason = rollout["plan"].reason or "the rollout was aborted"
        if phase:
            reason += f" — rollback procedure: {phase.title}"
        stops.append(Stop("abort", "Rollout aborted: traffic back on the stable version", reason))
    resumed = _last_resumed_at(events)
    for gv in approvals.get("gates", []):
        gate = gv.gate
        if gate.state == "closed" and gate.decision == "no_go":
            if deployment.state == DeploymentState.IN_PROGRESS and resumed and gate.decided_at and gate.decided_at < resumed:
                continue  # resumed since, with a reason: no longer what stops it
            stops.append(Stop("no_go", f"{gate.no_go_label} at “{gate.title}”", gate.decision_summary))
    if deployment.state == DeploymentState.PAUSED:
        reason = _last_reason(events, DeploymentState.PAUSED)
        # A pause caused by what is already on the banner (an abort, a NO-GO) says nothing new.
        if any(s.reason and reason and (s.reason in reason or reason in s.reason) for s in stops):
            return stops
        if reason or not stops:
            stops.append(Stop("paused", "Deployment paused", reason or "paused by the lead (no reason given)"))
    return stops


# --- the TV ---------------------------------------------------------------------------

MAX_TV_VOTERS = 12
MAX_TV_LATE = 4


def tv_context(deployment_id: int) -> dict:
    """Everything the TV shows, from the war room's own loaders."""
    context = board_context(deployment_id)
    board, approvals = context["board"], context.get("approvals") or {"gates": [], "open_gate": None}
    panels.prepare_for_tv(context)
    # The first step with lines still open (a step whose lines were all ticked in the runbook
    # itself, or by hand before work began, has no end time yet but is not "now").
    current = next((s for s in board.steps if s.total_leaves and s.done_leaves < s.total_leaves), None)
    phase = next((pv for pv in board.phases if current and pv.phase.pk == current.phase_id), None)
    next_item = board.next_gate
    gate = None
    if next_item is not None:
        gate = next((gv for gv in approvals["gates"] if gv.gate.item_id == next_item.pk), None)
    gate = gate or approvals["open_gate"]
    late = board.late_steps
    if board.deployment.is_finished:  # nothing is current or next any more
        current = phase = gate = None
        late = []
    context.update(
        clock=clock(board.deployment, board.steps, board.now),
        stops=stop_reasons(
            board.deployment, rollout=context.get("rollout"), approvals=approvals, incidents=context.get("incidents") or {}
        ),
        current=current,
        current_phase=phase,
        gate=gate,
        gate_people=(gate.people[:MAX_TV_VOTERS] if gate else []),
        gate_people_more=(max(len(gate.people) - MAX_TV_VOTERS, 0) if gate else 0),
        late=late[:MAX_TV_LATE],
        late_more=max(len(late) - MAX_TV_LATE, 0),
    )
    return context


# --- the phone: what waits for one person -------------------------------------------------


@dataclass
class MyWork:
    votes: list = field(default_factory=list)  # gate views where my vote is wanted
    approvals: list = field(default_factory=list)  # required approvals I may give
    sign_offs: list = field(default_factory=list)  # roles I hold without a report sign-off
    steps: list = field(default_factory=list)  # my steps with open lines: (step, [open items])
    alerts: list = field(default_factory=list)  # for the lead: SEV1s nobody can be paged for (incidents' banners)

    @property
    def count(self):
        return (
            len(self.alerts)
            + len(self.votes)
            + len(self.approvals)
            + len(self.sign_offs)
            + sum(len(items) for _, items in self.steps)
        )


def _open_leaves(items):
    for item in items:
        if item.is_group:
            yield from _open_leaves(item.child_list)
        elif not item.is_done and item.kind != "gate":
            yield item


def my_work(context: dict, user, access) -> MyWork:
    """What waits for ``user`` on this deployment, from a loaded war-room context."""
    board, d = context["board"], context["d"]
    approvals = context.get("approvals") or {"gates": [], "required_approvals": []}
    role_ids = set(access.role_ids)
    work = MyWork()
    if access.is_lead:
        work.alerts = list((context.get("incidents") or {}).get("unpaged", []))
    if not d.is_finished:
        for gv in approvals["gates"]:
            if gv.is_closed or not role_ids & set(gv.voter_role_ids):
                continue
            mine = next((p for p in getattr(gv, "people", []) if p.user_id == user.pk), None)
            if mine is None or mine.vote in ("waiting", "stale"):
                work.votes.append(gv)
        if d.state in (DeploymentState.DRAFT, DeploymentState.SCHEDULED):
            work.approvals = [
                a
                for a in approvals["required_approvals"]
                if not a.is_given and ((a.role_id and a.role_id in role_ids) or (not a.role_id and access.is_lead))
            ]
        for step in board.steps:
            if step.role_id and step.role_id in role_ids:
                items = list(_open_leaves(step.roots))
                if items:
                    work.steps.append((step, items))
    elif hooks.signs_off():
        signed = hooks.signed_roles(d)
        work.sign_offs = [r for r in board.roles if r.pk in role_ids and r.pk not in signed]
    return work
