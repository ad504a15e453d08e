"""Every state change of a deployment, one function each.

Each function checks permission, runs in one transaction with the rows it changes
locked, appends an event, and schedules the live push for after commit. Views,
consumers, tasks and the API call these; nothing else saves deployment rows.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from checklists.models import ItemKind, RunbookVersion
from checklists.review import role_names
from deployments import board, hooks, live
from deployments.actors import SystemActor
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import (
    ALLOWED_TRANSITIONS,
    FINISHED_STATES,
    REASON_STATES,
    CodeBlock,
    Deployment,
    DeploymentRole,
    DeploymentState,
    EmergencyContact,
    Item,
    Participant,
    Phase,
    Step,
)
from deployments.permissions import (
    Access,
    PermissionDenied,
    access_for,
    grant_participation,
    may_create_deployments,
    require_global,
    require_item_change,
    require_state_change,
    revoke_participation,
)


class InvalidChange(Exception):
    """The request cannot be applied as asked; the message says why in words."""


class DeploymentFinished(InvalidChange):
    """The deployment is completed, rolled back or aborted: what was decided stays decided."""


class OpenWork(InvalidChange):
    """Completing would leave work open; ``open`` lists it, in words. An override with a reason proceeds."""

    def __init__(self, message, open_work: list[str]):
        super().__init__(message)
        self.open = open_work


class NeedsConfirmation(InvalidChange):
    """The change would set things off at once; ``consequences`` lists them, in words. Asking
    again with the confirmation proceeds."""

    http_status = 409

    def __init__(self, message, consequences: list[str]):
        super().__init__(message)
        self.consequences = consequences


class StaleChange(InvalidChange):
    """Someone else changed it first; ``current`` is the row as it is now."""

    http_status = 409

    def __init__(self, message, current):
        super().__init__(message)
        self.current = current


def _require_lead(access: Access, what: str):
    if not access.is_lead:
        raise PermissionDenied(f"Only the deployment lead may {what}.")


def _display_name(user) -> str:
    return user.get_full_name() or user.get_username()


def require_unfinished(deployment: Deployment, what: str) -> None:
    """A finished deployment is read-only (its report is signed against this record)."""
    if deployment.is_finished:
        raise DeploymentFinished(f"This deployment is finished ({DeploymentState(deployment.state).label.lower()}): {what}.")


# --- creating ------------------------------------------------------------------------


@transaction.atomic
def create_deployment(
    version: RunbookVersion,
    *,
    lead,
    name: str,
    service: str,
    version_label: str,
    environment: str,
    planned_t0: datetime,
    timezone_name: str = "UTC",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> Deployment:
    """Snapshot the runbook version into a new draft deployment led by ``lead`` (who creates it)."""
    require_global(lead, may_create_deployments, "create deployments")
    if timezone.is_naive(planned_t0):
        raise InvalidChange("T-0 needs a time zone.")
    try:
        zoneinfo.ZoneInfo(timezone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidChange(f"Unknown time zone {timezone_name!r}.") from None
    if window_start and window_end and window_end <= window_start:
        raise InvalidChange("The maintenance window must end after it starts.")
    deployment = Deployment.objects.create(
        name=name,
        service=service,
        version_label=version_label,
        environment=environment,
        runbook_version=version,
        planned_t0=planned_t0,
        timezone_name=timezone_name,
        window_start=window_start,
        window_end=window_end,
        created_by=lead,
    )
    roles = {
        template_role.pk: DeploymentRole.objects.create(
            deployment=deployment, name=template_role.name, position=template_role.position
        )
        for template_role in version.roles.all()
    }
    for template_phase in version.phases.prefetch_related("steps__items", "steps__code_blocks"):
        phase = Phase.objects.create(
            deployment=deployment,
            position=template_phase.position,
            title=template_phase.title,
            description=template_phase.description,
        )
        for template_step in template_phase.steps.all():
            step = Step.objects.create(
                deployment=deployment,
                phase=phase,
                position=template_step.position,
                title=template_step.title,
                number=template_step.number,
                description=template_step.description,
                role=roles.get(template_step.role_id),
                offset_minutes=template_step.offset_minutes,
                duration_min_minutes=template_step.duration_min_minutes,
                duration_max_minutes=template_step.duration_max_minutes,
                is_gate=template_step.is_gate,
                action=template_step.action,
                action_config=template_step.action_config,
            )
            template_items = list(template_step.items.all())
            parent_ids = {ti.parent_id for ti in template_items if ti.parent_id}
            copies = {}
            # Parents come before children in position order; map ids as we go.
            for ti in sorted(template_items, key=lambda ti: (ti.position, ti.pk)):
                copies[ti.pk] = Item.objects.create(
                    deployment=deployment,
                    step=step,
                    parent=copies.get(ti.parent_id),
                    position=ti.position,
                    kind=ti.kind,
                    text=ti.text,
                    number=ti.number,
                    options=ti.options,
                    is_group=ti.pk in parent_ids,
                    checked=ti.initially_checked and ti.kind == ItemKind.CHECK,
                    done_by_system="runbook" if ti.initially_checked else "",
                )
            CodeBlock.objects.bulk_create(
                CodeBlock(step=step, position=cb.position, info=cb.info, code=cb.code) for cb in template_step.code_blocks.all()
            )
    contacts = _contacts_from_runbook(deployment, version.recognised or {}, roles)
    hooks.deployment_created(deployment)
    Participant.objects.create(deployment=deployment, user=lead, is_lead=True)
    grant_participation(lead, deployment, is_lead=True)
    record_event(
        deployment.pk,
        actor=lead,
        action="deployment.created",
        obj=deployment,
        summary=f"Created from {version} with T-0 {planned_t0.isoformat()}"
        + (f"; {len(contacts)} contacts from the runbook" if contacts else ""),
        after={"t0": planned_t0, "state": deployment.state},
    )
    return deployment


def _contacts_from_runbook(deployment: Deployment, recognised: dict, roles: dict) -> list[EmergencyContact]:
    """The contacts and escalation levels the import recognised (and the person importing kept).

    A contact names a person or a role, how to reach them as the runbook wrote it ("PagerDuty",
    "#ops-oncall", a phone number) and its level; unnumbered ones follow the numbered ones in
    the order written. A role the runbook names becomes the contact's role.
    """
    by_name = {role.name.casefold(): role for role in roles.values()}
    merged = role_names(recognised)
    entries = recognised.get("contacts") or []
    numbered = [entry.get("level") for entry in entries if isinstance(entry.get("level"), int)]
    next_level = max(numbered, default=0) + 1
    contacts = []
    for entry in entries:
        level = entry.get("level")
        if not isinstance(level, int) or level < 1:
            level, next_level = next_level, next_level + 1
        channel = (entry.get("channel") or "").strip()
        phone = channel if _PHONE_RE.fullmatch(channel) else ""
        email = channel if _EMAIL_RE.fullmatch(channel) else ""
        window = entry.get("window_minutes")
        contacts.append(
            EmergencyContact(
                deployment=deployment,
                role=by_name.get(merged.get(written.casefold(), written).casefold())
                if (written := (entry.get("role") or "").strip())
                else None,
                level=min(level, 32767),
                name=(entry.get("name") or entry.get("role") or entry.get("text") or "Contact")[:120],
                phone=phone[:40],
                email=email,
                channel="" if phone or email else channel[:200],
                window=f"{window[0]}–{window[1]} min" if isinstance(window, list) and len(window) == 2 else "",
                source_line=entry.get("line"),
            )
        )
    return EmergencyContact.objects.bulk_create(contacts)


_PHONE_RE = re.compile(r"\+?[\d ()./-]{6,40}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


# --- people --------------------------------------------------------------------------


@transaction.atomic
def set_participant(deployment: Deployment, actor, user, *, role_names: list[str], is_lead: bool = False) -> Participant:
    """Add a person or change their roles; the lead decides."""
    lock_deployment(deployment.pk)
    _require_lead(access_for(actor, deployment), "manage people")
    roles = list(DeploymentRole.objects.filter(deployment=deployment, name__in=role_names))
    unknown = set(role_names) - {r.name for r in roles}
    if unknown:
        raise InvalidChange(f"No such role in this deployment: {', '.join(sorted(unknown))}.")
    participant, created = Participant.objects.select_for_update().get_or_create(deployment=deployment, user=user)
    before = None if created else {"lead": participant.is_lead, "roles": sorted(r.name for r in participant.roles.all())}
    if not is_lead and participant.is_lead and user == actor:
        leads = Participant.objects.filter(deployment=deployment, is_lead=True).count()
        if leads == 1:
            raise InvalidChange("You are the only lead: make someone else lead first.")
    participant.is_lead = is_lead
    participant.save(update_fields=["is_lead"])
    participant.roles.set(roles)
    grant_participation(user, deployment, is_lead=is_lead)
    after = {"lead": is_lead, "roles": sorted(r.name for r in roles)}
    record_event(
        deployment.pk,
        actor=actor,
        action="participant.set",
        obj=participant,
        summary=f"{_display_name(user)}: {', '.join(after['roles']) or 'observer'}{' (lead)' if is_lead else ''}",
        before=before,
        after=after,
    )
    live.publish_on_commit(deployment.pk, lambda: board.render_people_push(deployment.pk))
    return participant


@transaction.atomic
def remove_participant(deployment: Deployment, actor, user) -> None:
    lock_deployment(deployment.pk)
    _require_lead(access_for(actor, deployment), "manage people")
    participant = Participant.objects.select_for_update().filter(deployment=deployment, user=user).first()
    if participant is None:
        raise InvalidChange("That person is not part of this deployment.")
    if (
        participant.is_lead
        and not Participant.objects.filter(deployment=deployment, is_lead=True).exclude(pk=participant.pk).exists()
    ):
        raise InvalidChange("A deployment needs a lead: make someone else lead first.")
    before = {"lead": participant.is_lead, "roles": sorted(r.name for r in participant.roles.all())}
    participant.delete()
    revoke_participation(user, deployment)
    live.revoke_on_commit(deployment.pk, user.pk)
    record_event(
        deployment.pk, actor=actor, action="participant.removed", summary=f"{_display_name(user)} removed", before=before
    )
    live.publish_on_commit(deployment.pk, lambda: board.render_people_push(deployment.pk))


@transaction.atomic
def add_contact(
    deployment: Deployment, actor, *, role_name: str | None, level: int, name: str, phone: str = "", email: str = ""
) -> EmergencyContact:
    lock_deployment(deployment.pk)
    _require_lead(access_for(actor, deployment), "manage emergency contacts")
    require_unfinished(deployment, "its contacts no longer change")
    role = None
    if role_name:
        role = DeploymentRole.objects.filter(deployment=deployment, name=role_name).first()
        if role is None:
            raise InvalidChange(f"No such role in this deployment: {role_name}.")
    if not (phone or email):
        raise InvalidChange("A contact needs a phone number or an e-mail address.")
    contact = EmergencyContact.objects.create(deployment=deployment, role=role, level=level, name=name, phone=phone, email=email)
    record_event(
        deployment.pk,
        actor=actor,
        action="contact.added",
        obj=contact,
        summary=f"Contact {name} (level {level}{', ' + role.name if role else ''})",
    )
    live.publish_on_commit(deployment.pk, lambda: board.render_people_push(deployment.pk))
    hooks.contacts_changed(deployment)
    return contact


# --- the deployment's own state -------------------------------------------------------


@transaction.atomic
def change_state(deployment_id: int, actor, new_state: str, *, reason: str = "", override_reason: str = "") -> Deployment:
    """A person moves the deployment along (the lead only; see transition_state)."""
    return transition_state(deployment_id, new_state, actor=actor, reason=reason, override_reason=override_reason)


def open_work(deployment: Deployment) -> list[str]:
    """What completing the deployment now would leave open, in words: checklist lines not
    done (the rollback phase's lines are not expected in a deployment that completes) and
    whatever the other apps report (open gates)."""
    leaves = Item.objects.filter(deployment=deployment, is_group=False).exclude(kind=ItemKind.GATE)
    leaves = leaves.exclude(step__phase__title__icontains="rollback")
    total = leaves.count()
    undone = leaves.filter(checked=False, value="").count()
    found = [f"{undone} of {total} checklist lines not done"] if undone else []
    return found + hooks.open_work(deployment)


@transaction.atomic
def transition_state(deployment_id: int, new_state: str, *, actor, reason: str = "", override_reason: str = "") -> Deployment:
    """The one path for state changes, for people and for Warroom's own actors (a gate
    decision or the rollout controller may pause; see permissions.require_state_change).

    Starting a scheduled deployment asks the start guards (hooks.guard_start: the required
    approvals); completing with open work needs ``override_reason``, recorded in the event;
    resuming after a NO-GO needs a ``reason``. When the deployment finishes, the other apps close
    what is still open in it (hooks.on_finished), inside this transaction.
    """
    deployment = lock_deployment(deployment_id)
    require_state_change(actor, deployment, new_state)
    if new_state not in DeploymentState.values:
        raise InvalidChange(f"Unknown state {new_state!r}.")
    old_state = deployment.state
    allowed_next = ALLOWED_TRANSITIONS[DeploymentState(old_state)]
    if new_state not in allowed_next:
        allowed = ", ".join(DeploymentState(s).label for s in allowed_next) or "nothing"
        if deployment.is_finished:
            raise DeploymentFinished(
                f"This deployment is finished ({DeploymentState(old_state).label.lower()}): its state no longer changes."
            )
        raise InvalidChange(
            f"A deployment that is {DeploymentState(old_state).label.lower()} cannot become "
            f"{DeploymentState(new_state).label.lower()} (allowed: {allowed})."
        )
    reason, override_reason = reason.strip(), override_reason.strip()
    if len(reason) > 1000 or len(override_reason) > 1000:
        raise InvalidChange("That reason is too long (1,000 characters at most).")
    if new_state in REASON_STATES and not reason:
        raise InvalidChange(f"Say why the deployment is {DeploymentState(new_state).label.lower()}.")
    if new_state == DeploymentState.IN_PROGRESS and old_state == DeploymentState.SCHEDULED:
        refused = hooks.start_refused(deployment)
        if refused:
            raise InvalidChange(refused)
    if new_state == DeploymentState.IN_PROGRESS and old_state == DeploymentState.PAUSED and not reason:
        why = hooks.resume_needs_reason(deployment)
        if why:
            raise InvalidChange(f"{why}: say why it is safe to resume (recorded in the log).")
    left_open = []
    if new_state == DeploymentState.COMPLETED:
        left_open = open_work(deployment)
        if left_open and not override_reason:
            raise OpenWork(
                "Still open: " + "; ".join(left_open) + ". Complete anyway only with an override and its reason.", left_open
            )
    now = timezone.now()
    deployment.state = new_state
    update = ["state"]
    if new_state == DeploymentState.IN_PROGRESS and deployment.started_at is None:
        deployment.started_at = now
        update.append("started_at")
    if new_state in FINISHED_STATES:
        deployment.finished_at = now
        update.append("finished_at")
    deployment.save(update_fields=update)
    after = {"state": new_state, "reason": reason}
    summary = f"{DeploymentState(old_state).label} → {DeploymentState(new_state).label}" + (f": {reason}" if reason else "")
    if left_open:
        after["override"] = {"reason": override_reason, "open": left_open}
        summary += f" (override: {override_reason}; left open: {'; '.join(left_open)})"
    record_event(
        deployment.pk,
        actor=actor,
        action="deployment.state",
        obj=deployment,
        summary=summary,
        before={"state": old_state},
        after=after,
    )
    if new_state in FINISHED_STATES:
        why = f"the deployment was {DeploymentState(new_state).label.lower()}" + (
            f" ({reason or 'override: ' + override_reason})" if reason or override_reason else ""
        )
        hooks.deployment_finished(deployment, why)
    live.publish_on_commit(deployment.pk, lambda: board.render_header_push(deployment.pk))
    return deployment


@transaction.atomic
def reanchor_t0(deployment_id: int, actor, new_t0: datetime, *, reason: str, confirm_due: bool = False) -> Deployment:
    """Move T-0: every planned time moves with it (they are offsets); actual times stay.

    What the move would set off at once (hooks.report_due_at_once: scheduled messages
    whose time would have passed) is listed in NeedsConfirmation unless ``confirm_due``;
    the event records what the lead confirmed.
    """
    deployment = lock_deployment(deployment_id)
    _require_lead(access_for(actor, deployment), "move T-0")
    require_unfinished(deployment, "its T-0 can no longer move")
    if timezone.is_naive(new_t0):
        raise InvalidChange("The new T-0 needs a time zone.")
    if not reason.strip():
        raise InvalidChange("Say why T-0 moves.")
    old_t0 = deployment.planned_t0
    if new_t0 == old_t0:
        raise InvalidChange("That is already T-0.")
    at_once = hooks.due_at_once(deployment, new_t0)
    if at_once and not confirm_due:
        raise NeedsConfirmation("Moving T-0 there sets off at once: " + "; ".join(at_once) + ". Confirm to move it.", at_once)
    shift = new_t0 - old_t0
    deployment.planned_t0 = new_t0
    fields = ["planned_t0"]
    if deployment.window_start:
        deployment.window_start += shift
        deployment.window_end = deployment.window_end + shift if deployment.window_end else None
        fields += ["window_start", "window_end"]
    deployment.save(update_fields=fields)
    # Steps that are late against the old T-0 may not be late any more.
    Step.objects.filter(deployment=deployment, actual_end__isnull=True).update(late_reported=False)
    minutes = int(shift.total_seconds() // 60)
    record_event(
        deployment.pk,
        actor=actor,
        action="deployment.reanchored",
        obj=deployment,
        summary=f"T-0 moved by {minutes:+d} min: {reason.strip()}"
        + (f" (confirmed, at once: {'; '.join(at_once)})" if at_once else ""),
        before={"t0": old_t0},
        after={"t0": new_t0, "reason": reason.strip(), "at_once": at_once},
    )
    live.publish_on_commit(deployment.pk, lambda: board.render_board_push(deployment.pk))
    return deployment


# --- items ---------------------------------------------------------------------------


def _refresh_step_actuals(step: Step, now) -> bool:
    """Keep a step's actual start/end in line with its items. Returns True if changed."""
    leaves = [i for i in step.items.all() if not i.is_group]
    done = [i for i in leaves if i.is_done]
    start = step.actual_start or (now if done else None)
    end = now if leaves and len(done) == len(leaves) else None
    if step.actual_end and end:
        end = step.actual_end  # already complete: keep the first completion time
    changed = (start, end) != (step.actual_start, step.actual_end)
    if changed:
        step.actual_start, step.actual_end = start, end
        step.save(update_fields=["actual_start", "actual_end"])
    return changed


def check_item_change(
    item: Item, actor, *, revision: int | None, checked: bool | None = None, value: str | None = None, note: str | None = None
) -> dict:
    """Everything that may refuse a change to a checklist line, before anything is written.

    Returns the line's new ``{"checked", "value", "note"}``. Raises Item.DoesNotExist for
    a person who may not see the deployment, DeploymentFinished, PermissionDenied (who may
    write which line is decided in deployments.permissions, for people and system actors
    alike), StaleChange, or InvalidChange for a malformed value.
    """
    access = None
    if not isinstance(actor, SystemActor):
        access = access_for(actor, item.deployment)  # read once, for both checks below
        if not access.can_view:
            raise Item.DoesNotExist
    require_unfinished(item.deployment, "its checklist is closed")
    if item.is_group:
        raise InvalidChange("This line is a group: it is done when its sub-items are.")
    if item.kind == ItemKind.CHECK:
        undoing = item.checked and checked is False
    else:
        undoing = item.is_done and value is not None and not value.strip()
    rewrites_evidence = item.is_done and note is not None and note.strip() != item.note
    require_item_change(actor, item, undoing=undoing, rewrites_evidence=rewrites_evidence, access=access)
    if revision is not None and revision != item.revision:
        who = _done_by_label(item) or "someone"
        raise StaleChange(f"{who} changed this item a moment ago; here is its current state.", item)

    after = {"checked": item.checked, "value": item.value, "note": item.note}
    if item.kind == ItemKind.CHECK:
        if checked is None:
            raise InvalidChange("Say whether the box is ticked.")
        after["checked"] = checked
    else:
        if value is None:
            raise InvalidChange("A value is needed.")
        value = value.strip()
        if len(value) > 2000:
            raise InvalidChange("That value is too long (2,000 characters at most).")
        if item.kind in (ItemKind.CHOICE, ItemKind.GATE) and value and value not in item.options:
            raise InvalidChange(f"Pick one of: {', '.join(item.options)}.")
        after["value"] = value
    if note is not None:
        if len(note) > 2000:
            raise InvalidChange("That note is too long (2,000 characters at most).")
        after["note"] = note.strip()
    return after


@transaction.atomic
def update_item(
    item_id: int,
    actor,
    *,
    revision: int | None,
    checked: bool | None = None,
    value: str | None = None,
    note: str | None = None,
    deployment_id: int | None = None,
) -> Item:
    """Tick, untick, fill a field or pick a choice — the one path for item state.

    ``actor`` is a person or a SystemActor (a pipeline, a task run, a gate decision…);
    check_item_change decides whether they may, then the change is applied. ``revision``
    is the revision the person saw; if the item changed since, nothing is written and
    StaleChange carries the current state to show them. ``deployment_id``: the deployment
    the caller addressed, when known (a line of another deployment is then "no such item").
    """
    if deployment_id is None:
        deployment = lock_deployment_of(Item, item_id)
    else:
        deployment = lock_deployment(deployment_id)
    item = Item.objects.select_for_update(of=("self",)).select_related("step__role").get(pk=item_id, deployment_id=deployment.pk)
    item.deployment = deployment
    after = check_item_change(item, actor, revision=revision, checked=checked, value=value, note=note)
    return _apply_item_change(item, actor, after, head=deployment)


def _apply_item_change(item: Item, actor, after: dict, *, head: Deployment | None = None) -> Item:
    """``head``: the deployment row locked for this change, when no event was recorded since."""
    before = {"checked": item.checked, "value": item.value, "note": item.note}
    if after == before:
        return item  # nothing to record: a double click, or the same value again
    was_done = item.is_done
    item.checked, item.value, item.note = after["checked"], after["value"], after["note"]
    system = actor.label if isinstance(actor, SystemActor) else ""
    now = timezone.now()
    if (item.is_done and not was_done) or (item.is_done and item.value != before["value"]):
        item.done_by = None if system else actor
        item.done_by_system = system
        item.done_at = now
    elif was_done and not item.is_done:
        item.done_by, item.done_by_system, item.done_at = None, "", None
    item.revision += 1
    item.save()
    step_changed = _refresh_step_actuals(item.step, now)

    if item.kind == ItemKind.CHECK:
        action = (
            "item.ticked"
            if item.checked and not before["checked"]
            else "item.unticked"
            if before["checked"] != item.checked
            else "item.noted"
        )
    else:
        action = f"{item.kind}.set" if item.value else f"{item.kind}.cleared"
    deployment_id = item.deployment_id
    record_event(
        deployment_id,
        actor=actor,
        action=action,
        obj=item,
        summary=f"{_verb(action)} “{item.text[:120]}”"
        + (f" = {item.value}" if item.value and item.kind != ItemKind.CHECK else ""),
        before=before,
        after=after,
        head=head,
    )
    hooks.item_changed(deployment_id)  # e.g. votes cast against the old checklist become stale
    live.publish_on_commit(deployment_id, board.ItemsPush(frozenset({item.pk}), step_changed))
    return item


def _verb(action: str) -> str:
    return {
        "item.ticked": "Ticked",
        "item.unticked": "Unticked",
        "item.noted": "Noted on",
    }.get(action, "Set" if action.endswith(".set") else "Cleared")


def _done_by_label(item: Item) -> str:
    if item.done_by_system:
        return item.done_by_system
    return _display_name(item.done_by) if item.done_by else ""


def mark_late_steps(now=None) -> int:
    """Record an event, once, for each step that passed its planned end undone.

    Run by Celery beat; the war room also shades late steps by itself from the
    planned times, this makes lateness part of the record and pushes the list.
    """
    now = now or timezone.now()
    reported = 0
    candidates = Step.objects.filter(
        deployment__state__in=[DeploymentState.IN_PROGRESS, DeploymentState.PAUSED],
        actual_end__isnull=True,
        late_reported=False,
        offset_minutes__isnull=False,
    ).select_related("deployment")
    for step in candidates:
        if not step.is_late(step.deployment.planned_t0, now):
            continue
        with transaction.atomic():
            lock_deployment(step.deployment_id)
            claimed = Step.objects.filter(pk=step.pk, late_reported=False).update(late_reported=True)
            if not claimed:
                continue
            record_event(
                step.deployment_id,
                actor=None,
                action="step.late",
                obj=step,
                summary=f"“{step.title}” is late: planned to end {step.planned_end(step.deployment.planned_t0):%H:%M} UTC",
            )
            deployment_id = step.deployment_id
            live.publish_on_commit(deployment_id, lambda d=deployment_id: board.render_late_push(d))
            reported += 1
    return reported
