"""Sign-offs and go/no-go gates: every change here, one function each.

Like deployments.services: permission check, one transaction with the changed rows
locked, an event in the deployment's chain, the live push after commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import hooks as approval_hooks
from approvals import panels
from approvals.models import SETTLED_GATE_STATES, ApiToken, Decision, Gate, GateRule, GateState, RequiredApproval, Vote
from checklists.models import ItemKind
from checklists.review import EXPLICIT_GATE, role_names
from deployments import actors, live
from deployments import services as deployment_services
from deployments.actors import SystemActor
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import Deployment, DeploymentRole, DeploymentState, Item, Participant
from deployments.permissions import ADD_GATE, CANCEL_GATES, LEAD, PermissionDenied, access_for, require, require_system
from deployments.services import InvalidChange, require_unfinished
from warroom.groupcommit import GroupCommit

NOT_STARTED = {DeploymentState.DRAFT, DeploymentState.SCHEDULED}
GO_WORDS = {"go", "go-live", "golive", "proceed", "approve", "approved"}


log = logging.getLogger(__name__)


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _push(deployment_id: int) -> None:
    live.publish_on_commit(deployment_id, lambda: panels.render_approvals_push(deployment_id))


# --- set-up from the runbook snapshot -------------------------------------------------------


def setup_from_runbook(deployment: Deployment) -> None:
    """Called when a deployment is created (a ``deployments.hooks.on_created`` receiver): the
    runbook's gates and required approvals.

    Gate lines (`☐ GO ☐ NO-GO`) become gates that every role votes on unanimously until the
    lead configures them; the other decision points the import recognised and the person
    importing kept ("**Go/No-Go Decision**: Proceed if …", "HOLD POINT") become gates too, one
    per decision, with the runbook's "proceed if" criteria kept on the gate. Required approvals
    the import recognised become sign-offs, each given by the role it names (or by the lead) —
    only those that must be given before the start (``checklists.review.blocks_start``); a
    closing section's sign-offs are the report's. Lines under a "Required Approvals" step
    are sign-offs as before, unless the person importing dropped them.
    """
    roles = list(deployment.roles.all())
    recognised = deployment.runbook_version.recognised or {}
    if not recognised.get("placed"):
        recognised = {}  # imported before findings were placed: only its explicit lines count, as they did then
    items = _items_by_place(deployment)
    boxed = {_place_of(entry): entry for entry in recognised.get("gates") or [] if entry.get("how") == EXPLICIT_GATE}
    gates: list[tuple[int, Gate]] = []  # (source line, gate): gates are numbered in reading order
    for item in Item.objects.filter(deployment=deployment, kind=ItemKind.GATE).select_related("step"):
        go_label, no_go_label = _gate_labels(item.options)
        entry = boxed.pop(items.get(item.pk), {})
        gate = Gate(
            deployment=deployment,
            item=item,
            go_label=go_label,
            no_go_label=no_go_label,
            title=_titled(f"{item.step.title}: {item.text}" if item.text else item.step.title, entry.get("criteria", "")),
            criteria=entry.get("criteria", ""),
        )
        gates.append((entry.get("line") or 0, gate))
    titles = {gate.title.casefold() for _line, gate in gates}
    steps = {(step.phase.position, step.position): step for step in deployment.steps.select_related("phase")}
    scheduled = {entry["line"] for entry in recognised.get("timeline") or [] if entry.get("notation") == "timeline entry"}
    boxed_steps = [_words(item.step.title) for _line, gate in gates if (item := gate.item) is not None]
    for entry in recognised.get("gates") or []:
        if entry.get("how") == EXPLICIT_GATE:
            continue  # a "☐ GO ☐ NO-GO" line: already a gate above
        if entry.get("line") in scheduled and any(len(_words(entry.get("text", "")) & step) >= 2 for step in boxed_steps):
            continue  # a timeline row scheduling the decision a step's GO / NO-GO line holds ("T-30 | Final go/no-go")
        text = " ".join(entry.get("text", "").split()) or "Go/no-go decision"
        if text.casefold()[:300] in titles:
            continue
        titles.add(text.casefold()[:300])
        criteria = entry.get("criteria", "")
        step = steps.get((entry.get("phase"), entry.get("step")))
        gate = Gate(deployment=deployment, title=_titled(text, criteria), criteria=criteria, step=step)
        gates.append((entry.get("line") or 0, gate))
    gates.sort(key=lambda pair: pair[0])
    for position, (_line, gate) in enumerate(gates):
        # No conditions yet: open until the lead sets some.
        gate.position, gate.state, gate.opened_at = position, GateState.OPEN, timezone.now()
        gate.save()
        gate.voter_roles.set(roles)
    _setup_required_approvals(deployment, roles, recognised, items)


def _titled(text: str, criteria: str) -> str:
    """A gate's title, carrying its criteria where the runbook wrote them apart (a list under the
    heading): the war room's gate panel shows the title, and voters need the criteria in view."""
    if criteria and criteria.casefold() not in text.casefold():
        text = f"{text.rstrip(' :')} — {criteria}"
    return text if len(text) <= 300 else text[:299] + "…"


# Words every decision shares; two steps are not the same decision for saying "go/no-go".
_COMMON_GATE_WORDS = {"and", "the", "step", "final", "go", "no", "decision", "gate"}


def _words(text: str) -> set[str]:
    return {word for word in re.findall(r"[^\W\d_]{2,}", text.casefold()) if word not in _COMMON_GATE_WORDS}


def _place_of(entry: dict) -> tuple:
    return (entry.get("phase"), entry.get("step"), entry.get("item"))


def _items_by_place(deployment: Deployment) -> dict[int, tuple[int, int, int]]:
    """Each checklist line's (phase, step, position): how the import's findings name a line."""
    rows = Item.objects.filter(deployment=deployment).values_list("pk", "step__phase__position", "step__position", "position")
    return {pk: (phase, step, position) for pk, phase, step, position in rows}


def _setup_required_approvals(deployment: Deployment, roles: list, recognised: dict, items: dict) -> None:
    by_name = {role.name.casefold(): role for role in roles}
    merged = role_names(recognised)  # "QA team sign-off" is given by the QA Lead when the import merged them
    by_place = {place: pk for pk, place in items.items()}
    boxes = set(Item.objects.filter(deployment=deployment, kind=ItemKind.CHECK, is_group=False).values_list("pk", flat=True))
    dropped_places = {_place_of(entry) for entry in (recognised.get("dropped") or {}).get("approvals", [])}
    approvals: list[RequiredApproval] = []
    used_items: set[int] = set()
    for entry in recognised.get("approvals") or []:
        if not entry.get("blocks_start", True):
            continue
        item_id = by_place.get(_place_of(entry)) if entry.get("item") is not None else None
        if item_id not in boxes:
            item_id = None  # a sign-off blank ("CAB chair: ____") is the signer's to fill, not a box to tick
        if item_id is not None and item_id in used_items:
            continue
        written = (entry.get("role") or "").strip()
        role = by_name.get(merged.get(written.casefold(), written).casefold()) or _role_named_in(entry.get("text", ""), roles)
        label = " ".join(entry.get("text", "").split())[:300] or "Approval"
        approvals.append(RequiredApproval(deployment=deployment, label=label, role=role, item_id=item_id))
        if item_id is not None:
            used_items.add(item_id)
    approval_items = Item.objects.filter(
        deployment=deployment, step__title__icontains="required approval", kind=ItemKind.CHECK, parent__isnull=True
    )
    for item in approval_items:
        if item.pk in used_items or items.get(item.pk) in dropped_places:
            continue
        approvals.append(
            RequiredApproval(deployment=deployment, label=item.text[:300], role=_role_named_in(item.text, roles), item=item)
        )
    for position, approval in enumerate(approvals):
        approval.position = position
    RequiredApproval.objects.bulk_create(approvals)


def _role_named_in(text: str, roles: list):
    text = text.lower()
    return next((r for r in sorted(roles, key=lambda r: -len(r.name)) if r.name.lower() in text), None)


def _gate_labels(options: list[str]) -> tuple[str, str]:
    go = next((o for o in options if o.strip().lower().replace(" ", "-") in GO_WORDS), options[0] if options else "GO")
    no_go = next((o for o in options if o != go), "NO-GO")
    return go[:40], no_go[:40]


# --- required approvals ----------------------------------------------------------------------


@transaction.atomic
def give_approval(approval_id: int, user, *, statement: str, comment: str = "") -> RequiredApproval:
    lock_deployment_of(RequiredApproval, approval_id)
    approval = RequiredApproval.objects.select_for_update(of=("self",)).select_related("deployment", "role").get(pk=approval_id)
    deployment = approval.deployment
    access = access_for(user, deployment)
    if not access.can_view:
        raise RequiredApproval.DoesNotExist
    if approval.role_id is None and not access.is_lead:
        raise PermissionDenied("Only the lead may give this approval.")
    if approval.role_id is not None and approval.role_id not in access.role_ids:
        raise PermissionDenied(f"Only the {approval.role.name} may give this approval.")
    require_unfinished(deployment, "approvals are closed")
    if deployment.state not in NOT_STARTED:
        raise InvalidChange("The deployment has started: approvals are closed.")
    if approval.is_given:
        raise InvalidChange(f"Already approved by {_name(approval.approved_by)}.")
    if not statement.strip():
        raise InvalidChange("An approval needs a statement (what you approve).")
    approval.approved_by, approval.approved_at = user, timezone.now()
    approval.statement, approval.comment = statement.strip()[:500], comment.strip()
    approval.save()
    record_event(
        deployment.pk,
        actor=user,
        action="approval.given",
        obj=approval,
        summary=f"Approved “{approval.label}”: {approval.statement}",
        after={"statement": approval.statement, "comment": approval.comment},
    )
    _sync_runbook_line(approval, given=True)
    _push(deployment.pk)
    return approval


@transaction.atomic
def withdraw_approval(approval_id: int, user, *, reason: str = "") -> RequiredApproval:
    lock_deployment_of(RequiredApproval, approval_id)
    approval = RequiredApproval.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=approval_id)
    deployment = approval.deployment
    access = access_for(user, deployment)
    if not access.can_view:
        raise RequiredApproval.DoesNotExist
    if not approval.is_given:
        raise InvalidChange("This approval has not been given.")
    if approval.approved_by_id != user.pk and not access.is_lead:
        raise PermissionDenied("Only the approver or the lead may withdraw an approval.")
    require_unfinished(deployment, "approvals can no longer be withdrawn")
    if deployment.state not in NOT_STARTED:
        raise InvalidChange("The deployment has started: approvals can no longer be withdrawn.")
    before = {"by": approval.approved_by_id, "statement": approval.statement}
    approval.approved_by = approval.approved_at = None
    approval.statement = approval.comment = ""
    approval.save()
    record_event(
        deployment.pk,
        actor=user,
        action="approval.withdrawn",
        obj=approval,
        summary=f"Withdrew approval “{approval.label}”" + (f": {reason.strip()}" if reason.strip() else ""),
        before=before,
    )
    _sync_runbook_line(approval, given=False)
    _push(deployment.pk)
    return approval


def _sync_runbook_line(approval: RequiredApproval, *, given: bool) -> None:
    """Keep the runbook's own checkbox for this approval in step with it."""
    if approval.item_id is None:
        return

    item = Item.objects.get(pk=approval.item_id)
    if item.checked != given:
        deployment_services.update_item(
            item.pk, actors.APPROVALS, revision=None, checked=given, note=approval.statement if given else ""
        )


def missing_approvals(deployment: Deployment) -> list[RequiredApproval]:
    return list(RequiredApproval.objects.filter(deployment=deployment, approved_at__isnull=True))


def why_not_ready_to_start(deployment: Deployment) -> str | None:
    """The start guard (deployments.hooks.guard_start): every required approval is given first."""
    missing = missing_approvals(deployment)
    if missing:
        return "Missing approvals: " + "; ".join(a.label for a in missing) + "."
    return None


def is_approval_line(item: Item) -> bool:
    """The runbook line of a required approval: only the approvals sync writes it."""
    return RequiredApproval.objects.filter(item_id=item.pk).exists()


# --- gates: evidence ------------------------------------------------------------------------


def evidence_items(gate: Gate):
    """What a vote on this gate is cast against: its condition items, or else every
    checklist line up to and including the gate's step (every line, for a gate that stands nowhere)."""
    conditions = list(gate.condition_items.all())
    if conditions:
        return conditions
    items = Item.objects.filter(deployment_id=gate.deployment_id, is_group=False).exclude(kind=ItemKind.GATE)
    step = gate.at_step
    if step is not None:
        items = items.filter(step__phase__position__lte=step.phase.position).exclude(
            step__phase__position=step.phase.position, step__position__gt=step.position
        )
    return list(items.order_by("pk"))


def evidence_digest(gate: Gate) -> str:
    state = [[i.pk, i.checked, i.value] for i in evidence_items(gate)]
    return hashlib.sha256(json.dumps(state, separators=(",", ":")).encode()).hexdigest()


# --- gates: who votes, and the rule --------------------------------------------------------


@dataclass
class Tally:
    go: list = field(default_factory=list)
    no_go: list = field(default_factory=list)
    stale: list = field(default_factory=list)
    waiting: list = field(default_factory=list)  # eligible voters without a current vote
    by_role: dict = field(default_factory=dict)  # role name → {"go": n, "no_go": n, "eligible": n}


def eligible_voters(gate: Gate, *, participants=None) -> dict[int, set[int]]:
    """user id → ids of the voting roles they hold (lead-only people do not vote). One query,
    or none when ``participants`` (the deployment's, with their roles) are loaded already."""
    voter_role_ids = {r.pk for r in gate.voter_roles.all()}
    result: dict[int, set[int]] = {}
    if participants is not None:
        for participant in participants:
            held = {role.pk for role in participant.roles.all()} & voter_role_ids
            if held:
                result[participant.user_id] = held
        return result
    held = Participant.roles.through.objects.filter(
        participant__deployment_id=gate.deployment_id, deploymentrole_id__in=voter_role_ids
    ).values_list("participant__user_id", "deploymentrole_id")
    for user_id, role_id in held:
        result.setdefault(user_id, set()).add(role_id)
    return result


def tally(gate: Gate, votes=None, voters=None) -> Tally:
    votes = list(votes if votes is not None else gate.votes.select_related("voter"))
    voters = voters if voters is not None else eligible_voters(gate)
    roles = {r.pk: r.name for r in gate.voter_roles.all()}
    result = Tally(by_role={name: {"go": 0, "no_go": 0, "eligible": 0} for name in roles.values()})
    current = {}
    for vote in votes:
        if vote.stale:
            result.stale.append(vote)
        elif vote.voter_id in voters:
            current[vote.voter_id] = vote
            (result.go if vote.choice == Decision.GO else result.no_go).append(vote)
    for user_id, role_ids in voters.items():
        for role_id in role_ids:
            counts = result.by_role[roles[role_id]]
            counts["eligible"] += 1
            if user_id in current:
                counts["go" if current[user_id].choice == Decision.GO else "no_go"] += 1
        if user_id not in current:
            result.waiting.append(user_id)
    return result


def evaluate(gate: Gate, votes_tally: Tally, voters: dict[int, set[int]]) -> tuple[str | None, str]:
    """The rule applied to the current votes: (decision or None, why in words)."""
    veto_ids = {r.pk for r in gate.veto_roles.all()}
    for vote in votes_tally.no_go:
        if voters.get(vote.voter_id, set()) & veto_ids:
            return Decision.NO_GO, f"Veto by {_name(vote.voter)}: {vote.reason}"
    if gate.rule == GateRule.DECIDER:
        decider = gate.decider_role_id
        for vote in votes_tally.go + votes_tally.no_go:
            if decider in voters.get(vote.voter_id, set()):
                word = "GO" if vote.choice == Decision.GO else "NO-GO"
                return vote.choice, f"{_name(vote.voter)} ({gate.decider_role.name}) decided {word}" + (
                    f": {vote.reason}" if vote.reason else ""
                )
        return None, ""
    if gate.rule == GateRule.UNANIMOUS:
        if votes_tally.no_go:
            vote = votes_tally.no_go[0]
            return Decision.NO_GO, f"NO-GO from {_name(vote.voter)}: {vote.reason}"
        if voters and not votes_tally.waiting:
            return Decision.GO, f"Unanimous GO ({len(votes_tally.go)} of {len(voters)})"
        return None, ""
    # Quorum: N GO votes overall and/or per role; NO-GO once GO can no longer be reached.
    needed = gate.quorum or 0
    per_role = {int(k): int(v) for k, v in (gate.role_quorum or {}).items()}
    role_names = {r.pk: r.name for r in gate.voter_roles.all()}
    go_by_role = {rid: 0 for rid in per_role}
    for vote in votes_tally.go:
        for rid in voters.get(vote.voter_id, set()):
            if rid in go_by_role:
                go_by_role[rid] += 1
    if len(votes_tally.go) >= needed and all(go_by_role[r] >= n for r, n in per_role.items()):
        parts = [f"{len(votes_tally.go)} GO of {needed} needed"] + [
            f"{role_names.get(r, r)} {go_by_role[r]}/{n}" for r, n in per_role.items()
        ]
        return Decision.GO, "Quorum reached: " + ", ".join(parts)
    if len(votes_tally.go) + len(votes_tally.waiting) < needed:
        reasons = "; ".join(f"{_name(v.voter)}: {v.reason}" for v in votes_tally.no_go)
        return Decision.NO_GO, f"Quorum of {needed} GO can no longer be reached" + (f" ({reasons})" if reasons else "")
    return None, ""


# --- gates: changes --------------------------------------------------------------------------


def _conditions_met(gate: Gate) -> bool:
    return all(i.is_done for i in gate.condition_items.all())


def refresh_gates(deployment_id: int) -> None:
    """After the checklist changed: mark votes cast against other evidence stale, and
    open gates whose conditions are now met. Runs inside the caller's transaction, which
    holds the deployment's lock already (deployments/locks.py): it takes no second one."""
    changed = False
    gates = Gate.objects.select_for_update().filter(deployment_id=deployment_id).exclude(state__in=SETTLED_GATE_STATES)
    for gate in gates.order_by("pk"):
        has_conditions = gate.condition_items.exists()
        if gate.state == GateState.WAITING and _conditions_met(gate):
            gate.state, gate.opened_at = GateState.OPEN, timezone.now()
            gate.save(update_fields=["state", "opened_at"])
            record_event(deployment_id, actor=None, action="gate.opened", obj=gate, summary=f"Voting opened: {gate.title}")
            changed = True
        elif gate.state == GateState.OPEN and has_conditions and not _conditions_met(gate):
            gate.state = GateState.WAITING
            gate.save(update_fields=["state"])
            record_event(
                deployment_id,
                actor=None,
                action="gate.waiting",
                obj=gate,
                summary=f"Voting paused: a condition of “{gate.title}” is no longer met",
            )
            changed = True
        digest = evidence_digest(gate)
        for vote in gate.votes.filter(stale=False).exclude(evidence_digest=digest).select_related("voter"):
            vote.stale = True
            vote.save(update_fields=["stale"])
            record_event(
                deployment_id,
                actor=None,
                action="vote.stale",
                obj=vote,
                summary=f"{_name(vote.voter)}'s vote on “{gate.title}” is stale: the evidence changed",
            )
            changed = True
    if changed:
        _push(deployment_id)


@dataclass(frozen=True)
class _Ballot:
    user: Any
    choice: str
    reason: str


_ballots = GroupCommit()  # votes on one gate arriving together are applied in one transaction


def cast_vote(gate_id: int, user, choice: str, *, reason: str = "", deployment_id: int | None = None) -> Vote:
    """One vote per person per gate, changeable until the gate closes.

    Checked, then applied. What does not depend on other people's writes (may this person see
    the deployment, is the choice and reason valid) is checked before taking any lock, so fifty
    people voting at once do that part side by side. The rest is applied under the deployment's
    lock (deployments/locks.py) by ``_apply_votes``, with a group commit (warroom/groupcommit.py):
    votes on the same gate that arrive while one is being applied are applied together, in
    arrival order, in one transaction, exactly as if one after another: each re-checks the
    gate's state and the voter's eligibility as they stand after the votes before it, so the
    votes count once each and the gate closes once. ``deployment_id``: the deployment the
    caller addressed; a gate of another deployment is "no such gate".
    """
    seen = Gate.objects.select_related("deployment").filter(pk=gate_id).first()
    if seen is None or (deployment_id is not None and seen.deployment_id != deployment_id):
        raise Gate.DoesNotExist(f"No gate {gate_id}")
    if not access_for(user, seen.deployment).can_view:
        raise Gate.DoesNotExist
    if choice not in Decision.values:
        raise InvalidChange("Vote GO or NO-GO.")
    reason = reason.strip()
    if choice == Decision.NO_GO and not reason:
        raise InvalidChange("A NO-GO needs a reason.")
    if len(reason) > 2000:
        raise InvalidChange("That reason is too long (2,000 characters at most).")
    ballot = _Ballot(user, choice, reason)
    apply = partial(_apply_votes, seen.deployment_id, gate_id)
    if transaction.get_connection().in_atomic_block:
        # Part of a larger change (its transaction is not ours to share): applied alone, in it.
        (outcome,) = apply([ballot])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return _ballots.run(gate_id, ballot, apply)


def _apply_votes(deployment_id: int, gate_id: int, ballots: list[_Ballot]) -> list:
    """Apply ballots in order in one transaction; one outcome each: the Vote, or the refusal
    (raised before that ballot wrote anything). Anything else raised rolls the group back.

    Once the transaction has committed this returns normally, whatever runs after the
    commit: the group commit would otherwise apply the ballots again."""
    outcomes: list = []
    committed: list[bool] = []
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(True))  # first of this transaction's hooks
            outcomes = _apply_ballots(deployment_id, gate_id, ballots)
    except Exception:
        if not committed:
            raise
        log.exception("after the votes on gate %s were committed", gate_id)
    return outcomes


def _apply_ballots(deployment_id: int, gate_id: int, ballots: list[_Ballot]) -> list:
    """The group's work, inside its transaction: one lock, one read of the gate, then each ballot."""
    deployment = lock_deployment(deployment_id)
    gate = (
        Gate.objects.select_for_update(of=("self",))
        .select_related("decider_role", "item__step__phase")
        .prefetch_related("voter_roles", "veto_roles")
        .get(pk=gate_id)
    )
    gate.deployment = deployment
    shared: dict = {}  # read once for the group, when the first ballot needs it
    outcomes: list = []
    for ballot in ballots:
        try:
            _check_ballot(deployment, gate, ballot, shared)
        except (InvalidChange, PermissionDenied) as refused:
            outcomes.append(refused)
            continue
        outcomes.append(_write_vote(deployment, gate, ballot, shared))
    if any(isinstance(outcome, Vote) for outcome in outcomes):
        _push(deployment.pk)
    return outcomes


def _check_ballot(deployment: Deployment, gate: Gate, ballot: _Ballot, shared: dict) -> None:
    require_unfinished(deployment, "its gates take no more votes")
    if gate.state == GateState.CLOSED:
        raise InvalidChange(f"This gate is closed: {gate.get_decision_display()}.")
    if gate.state == GateState.CANCELLED:
        raise InvalidChange(f"This gate was cancelled: {gate.decision_summary}")
    if gate.state == GateState.WAITING:
        if "conditions_met" not in shared:
            shared["conditions_met"] = _conditions_met(gate)
        if not shared["conditions_met"]:
            raise InvalidChange("Voting has not opened: the gate's checklist is not complete yet.")
    if "voters" not in shared:
        shared["voters"] = eligible_voters(gate)  # read under the lock: someone removed a moment ago no longer votes
    if ballot.user.pk not in shared["voters"]:
        names = ", ".join(r.name for r in gate.voter_roles.all()) or "nobody yet"
        raise PermissionDenied(f"You do not vote on this gate (voters: {names}).")


def _write_vote(deployment: Deployment, gate: Gate, ballot: _Ballot, shared: dict) -> Vote:
    user, choice, reason = ballot.user, ballot.choice, ballot.reason
    now = timezone.now()
    if gate.state == GateState.WAITING:
        gate.state, gate.opened_at = GateState.OPEN, now
        gate.save(update_fields=["state", "opened_at"])
    if "votes" not in shared:
        shared["votes"] = list(gate.votes.select_related("voter"))
        shared["evidence"] = evidence_digest(gate)  # the checklist does not change while the lock is held
    votes, voters = shared["votes"], shared["voters"]
    previous = next((v for v in votes if v.voter_id == user.pk), None)
    before = {"choice": previous.choice, "reason": previous.reason, "stale": previous.stale} if previous else None
    fields = {"choice": choice, "reason": reason, "evidence_digest": shared["evidence"], "stale": False, "cast_at": now}
    if previous is None:
        vote = Vote.objects.create(gate=gate, voter=user, **fields)
        votes.append(vote)
    else:
        vote = previous
        for name, value in fields.items():
            setattr(vote, name, value)
        vote.save(update_fields=list(fields))
    word = "GO" if choice == Decision.GO else "NO-GO"
    record_event(
        deployment.pk,
        actor=user,
        action="vote.cast",
        obj=vote,
        summary=f"{word} on “{gate.title}”" + (f": {reason}" if reason else ""),
        before=before,
        after={"choice": choice, "reason": reason, "evidence": vote.evidence_digest},
        head=deployment,
    )
    decision, why = evaluate(gate, tally(gate, votes=votes, voters=voters), voters)
    if decision:
        _close(gate, decision, why, actor=None)
        # Closing writes through other services (the gate's line, the deployment's state),
        # whose events move the chain on without this head: read it again.
        deployment.refresh_from_db(fields=["state", "event_count", "last_event_hash"])
    return vote


@transaction.atomic
def close_gate_early(gate_id: int, actor, decision: str, *, reason: str) -> Gate:
    lock_deployment_of(Gate, gate_id)
    gate = Gate.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=gate_id)
    access = access_for(actor, gate.deployment)
    if not access.can_view:
        raise Gate.DoesNotExist
    if not access.is_lead:
        raise PermissionDenied("Only the lead may close a gate early.")
    require_unfinished(gate.deployment, "its gates are settled")
    if gate.state in SETTLED_GATE_STATES:
        raise InvalidChange("This gate is already decided.")
    if decision not in Decision.values:
        raise InvalidChange("Close the gate as GO or NO-GO.")
    if not reason.strip():
        raise InvalidChange("Say why the gate is closed early: it is recorded as an override.")
    gate.overridden_by = actor
    _close(gate, decision, f"Closed early by {_name(actor)} (override): {reason.strip()}", actor=actor)
    _push(gate.deployment_id)
    return gate


def _close(gate: Gate, decision: str, why: str, *, actor) -> None:
    gate.state, gate.decision, gate.decided_at, gate.decision_summary = GateState.CLOSED, decision, timezone.now(), why
    gate.save()
    word = gate.label_for(decision)
    record_event(
        gate.deployment_id,
        actor=actor,
        action="gate.decided",
        obj=gate,
        summary=f"“{gate.title}” decided {word}: {why}",
        after={"decision": decision, "why": why},
    )
    if gate.item_id:
        deployment_services.update_item(gate.item_id, actors.GATE_DECISION, revision=None, value=word)
    deployment = Deployment.objects.get(pk=gate.deployment_id)
    if decision == Decision.NO_GO and deployment.state == DeploymentState.IN_PROGRESS:
        deployment_services.transition_state(
            deployment.pk, DeploymentState.PAUSED, actor=actors.GATE_DECISION, reason=f"NO-GO at “{gate.title}”"
        )
    approval_hooks.gate_decided(gate, decision)


@transaction.atomic
def configure_gate(
    gate_id: int,
    actor,
    *,
    voter_role_ids: list[int],
    rule: str,
    quorum: int | None = None,
    role_quorum: dict | None = None,
    decider_role_id: int | None = None,
    veto_role_ids: list[int] = (),
    condition_item_ids: list[int] = (),
) -> Gate:
    lock_deployment_of(Gate, gate_id)
    gate = Gate.objects.select_for_update().get(pk=gate_id)
    _require_lead(actor, gate.deployment)
    require_unfinished(gate.deployment, "its gates are settled")
    if gate.state in SETTLED_GATE_STATES:
        raise InvalidChange("A decided gate cannot be reconfigured.")
    _validate_rule(gate.deployment_id, voter_role_ids, rule, quorum, role_quorum or {}, decider_role_id, veto_role_ids)
    items = list(Item.objects.filter(deployment_id=gate.deployment_id, pk__in=condition_item_ids))
    if len(items) != len(set(condition_item_ids)):
        raise InvalidChange("Some condition items are not in this deployment.")
    before = _gate_config(gate)
    gate.rule, gate.quorum, gate.role_quorum, gate.decider_role_id = rule, quorum, role_quorum or {}, decider_role_id
    gate.save()
    gate.voter_roles.set(voter_role_ids)
    gate.veto_roles.set(veto_role_ids)
    gate.condition_items.set(items)
    if gate.state == GateState.OPEN and not _conditions_met(gate):
        gate.state = GateState.WAITING
        gate.save(update_fields=["state"])
    record_event(
        gate.deployment_id,
        actor=actor,
        action="gate.configured",
        obj=gate,
        summary=f"Gate “{gate.title}”: {gate.get_rule_display()}",
        before=before,
        after=_gate_config(gate),
    )
    refresh_gates(gate.deployment_id)
    _push(gate.deployment_id)
    return gate


@transaction.atomic
def add_gate(
    deployment: Deployment,
    actor,
    *,
    title: str,
    voter_role_ids: list[int],
    rule: str = GateRule.UNANIMOUS,
    quorum: int | None = None,
    decider_role_id: int | None = None,
    veto_role_ids: list[int] = (),
) -> Gate:
    """The lead adds a gate; or Warroom itself does, as a SystemActor with that right (a SEV1's incident)."""
    lock_deployment(deployment.pk)
    if isinstance(actor, SystemActor):
        require_system(actor, ADD_GATE)
    else:
        _require_lead(actor, deployment)
    require_unfinished(deployment, "no more gates open in it")
    if not title.strip():
        raise InvalidChange("A gate needs a title.")
    _validate_rule(deployment.pk, voter_role_ids, rule, quorum, {}, decider_role_id, veto_role_ids)
    position = (Gate.objects.filter(deployment=deployment).count() or 0) + 1
    gate = Gate.objects.create(
        deployment=deployment,
        title=title.strip()[:300],
        rule=rule,
        quorum=quorum,
        decider_role_id=decider_role_id,
        position=position,
        state=GateState.OPEN,
        opened_at=timezone.now(),
    )
    gate.voter_roles.set(voter_role_ids)
    gate.veto_roles.set(veto_role_ids)
    record_event(
        deployment.pk,
        actor=actor,
        action="gate.added",
        obj=gate,
        summary=f"Gate added: {gate.title}",
        after=_gate_config(gate),
    )
    _push(deployment.pk)
    return gate


def _gate_config(gate: Gate) -> dict:
    return {
        "rule": gate.rule,
        "quorum": gate.quorum,
        "role_quorum": gate.role_quorum,
        "decider": gate.decider_role_id,
        "voters": sorted(gate.voter_roles.values_list("pk", flat=True)),
        "veto": sorted(gate.veto_roles.values_list("pk", flat=True)),
        "conditions": sorted(gate.condition_items.values_list("pk", flat=True)),
    }


def _require_lead(actor, deployment):
    require(actor, LEAD, deployment, not_found=Gate.DoesNotExist, refusal="Only the lead may configure gates.")


def _validate_rule(deployment_id, voter_role_ids, rule, quorum, role_quorum, decider_role_id, veto_role_ids):  # noqa: PLR0917
    known = set(DeploymentRole.objects.filter(deployment_id=deployment_id).values_list("pk", flat=True))
    if not voter_role_ids:
        raise InvalidChange("Choose at least one voting role.")
    if not set(voter_role_ids) <= known or not set(veto_role_ids) <= known:
        raise InvalidChange("Some roles are not in this deployment.")
    if rule not in GateRule.values:
        raise InvalidChange(f"Unknown rule {rule!r}.")
    if rule == GateRule.QUORUM:
        if not quorum and not role_quorum:
            raise InvalidChange("A quorum rule needs N (GO votes needed) or per-role numbers.")
        if quorum is not None and quorum < 1:
            raise InvalidChange("The quorum must be at least 1.")
        for role_id, n in role_quorum.items():
            if int(role_id) not in set(voter_role_ids) or int(n) < 1:
                raise InvalidChange("Per-role quorums need voting roles and numbers of at least 1.")
    if rule == GateRule.DECIDER and decider_role_id not in set(voter_role_ids):
        raise InvalidChange("The decider must hold one of the voting roles.")


# --- API tokens -------------------------------------------------------------------------------


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def create_api_token(deployment: Deployment, actor, *, name: str) -> tuple[ApiToken, str]:
    """Returns the token row and the raw token, which is shown once and never stored."""
    access = access_for(actor, deployment)
    if not access.is_lead:
        raise PermissionDenied("Only the lead may create API tokens.")
    if not name.strip():
        raise InvalidChange("Name the token (e.g. the pipeline that uses it).")
    raw = "wr_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        deployment=deployment, name=name.strip()[:100], prefix=raw[:8], token_hash=hash_token(raw), created_by=actor
    )
    record_event(deployment.pk, actor=actor, action="token.created", obj=token, summary=f"API token “{token.name}” created")
    return token, raw


@transaction.atomic
def revoke_api_token(token_id: int, actor) -> ApiToken:
    lock_deployment_of(ApiToken, token_id)
    token = ApiToken.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=token_id)
    access = access_for(actor, token.deployment)
    if not access.is_lead:
        raise PermissionDenied("Only the lead may revoke API tokens.")
    if token.revoked_at:
        raise InvalidChange("This token is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record_event(token.deployment_id, actor=actor, action="token.revoked", obj=token, summary=f"API token “{token.name}” revoked")
    return token


def authenticate_token(raw: str) -> ApiToken | None:
    if not raw or not raw.startswith("wr_"):
        return None
    token = ApiToken.objects.filter(token_hash=hash_token(raw), revoked_at__isnull=True).select_related("deployment").first()
    if token:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


# --- a deployment's gates when it finishes, or resumes -------------------------------------------


def open_gates(deployment: Deployment) -> list[str]:
    """Registered as open work: completing with these needs an override."""
    return [
        f"gate open: “{title}”"
        for title in Gate.objects.filter(deployment=deployment)
        .exclude(state__in=SETTLED_GATE_STATES)
        .values_list("title", flat=True)
    ]


def no_go_needs_reason(deployment: Deployment) -> str | None:
    """Registered as a resume guard: after a NO-GO, resuming is a decision that needs its reason."""
    gate = Gate.objects.filter(deployment=deployment, decision=Decision.NO_GO).order_by("-decided_at").first()
    return f"A NO-GO at “{gate.title}” paused this deployment" if gate else None


def cancel_open_gates(deployment: Deployment, why: str) -> None:
    """Registered for when a deployment finishes: a gate nobody decided is cancelled, with the
    reason, and takes no more votes — so the signed report cannot drift from the record."""
    require_system(actors.WARROOM, CANCEL_GATES)
    now = timezone.now()
    cancelled = 0
    # transition_state, which calls this, holds the deployment's lock already.
    gates = Gate.objects.select_for_update().filter(deployment=deployment).exclude(state__in=SETTLED_GATE_STATES)
    for gate in gates.order_by("pk"):
        before = {"state": gate.state}
        gate.state, gate.decided_at, gate.decision_summary = GateState.CANCELLED, now, f"Cancelled undecided: {why}"
        gate.save(update_fields=["state", "decided_at", "decision_summary"])
        record_event(
            deployment.pk,
            actor=actors.WARROOM,
            action="gate.cancelled",
            obj=gate,
            summary=f"“{gate.title}” cancelled undecided: {why}",
            before=before,
            after={"state": gate.state, "why": why},
        )
        cancelled += 1
    if cancelled:
        _push(deployment.pk)


def gate_event_places(deployment: Deployment):
    """A gate in the event log stands in its line's step, or the step it was recognised in."""
    for gate_id, item_step, step_id in Gate.objects.filter(deployment=deployment).values_list("pk", "item__step_id", "step_id"):
        if item_step or step_id:
            yield "gate", gate_id, item_step or step_id
