"""Where the apps above ``deployments`` plug into its state changes.

Like the report sections (``reports.sections.provide``), an app registers its part
once, in its ``AppConfig.ready()``; ``deployments`` calls whatever is registered and
imports nothing of theirs::

    from deployments import hooks

    hooks.claim_lines(SystemKind.APPROVALS, lambda item: RequiredApproval.objects.filter(item=item).exists())
    hooks.report_open_work(lambda deployment: [f"gate “{g.title}” is open" for g in open_gates(deployment)])
    hooks.guard_resume(lambda deployment: "a NO-GO paused it" if ... else None)
    hooks.on_finished(close_open_gates)
    hooks.on_created(make_gates_from_runbook)
    hooks.place_events_in_steps(lambda deployment: [("taskrun", run.pk, run.step_id) for run in runs_of(deployment)])
    hooks.report_due_at_once(lambda deployment, new_t0: ["“Go-live” goes out at once"])
    hooks.guard_start(lambda deployment: "Missing approvals: …" if missing(deployment) else None)
    hooks.on_item_changed(refresh_gates)
    hooks.report_sign_offs(lambda deployment: {role ids that signed the report})

Every hook runs inside the caller's transaction: one that raises refuses the change.
"""

from __future__ import annotations

from collections.abc import Callable

from deployments.actors import SystemKind

# Lines another app keeps in step with its own records: only that app's actor writes them.
_line_owners: list[tuple[SystemKind, Callable]] = []
# What is still open in a deployment (names, in words) that completing it would leave behind.
_open_work: list[Callable] = []
# Why resuming a paused deployment needs a reason (None: it does not).
_resume_guards: list[Callable] = []
# Called once when a deployment finishes: (deployment, reason in words).
_finished: list[Callable] = []
# Called once when a deployment is created from a runbook version, after its snapshot (deployment).
_created: list[Callable] = []
# Which step the objects an app names in the event log stand in: (deployment) → (object_type, id, step id)s.
_event_places: list[Callable] = []
# What moving T-0 to a new time would set off at once (deployment, new_t0) → lines in words.
_due_at_once: list[Callable] = []
# Why a scheduled deployment may not start yet (None: it may).
_start_guards: list[Callable] = []
# Called after a checklist line changed, inside its transaction (deployment id).
_item_changed: list[Callable] = []
# Which roles signed the deployment's report off: (deployment) → set of role ids.
_sign_offs: list[Callable] = []
# Called after the emergency contacts changed, inside the change's transaction (deployment).
_contacts_changed: list[Callable] = []


def _add(registry: list, entry) -> None:
    if entry not in registry:  # ready() may run twice in tests; register once
        registry.append(entry)


def claim_lines(kind: SystemKind, predicate: Callable) -> None:
    _add(_line_owners, (kind, predicate))


def report_open_work(provider: Callable) -> None:
    _add(_open_work, provider)


def guard_resume(guard: Callable) -> None:
    _add(_resume_guards, guard)


def on_finished(receiver: Callable) -> None:
    _add(_finished, receiver)


def on_created(receiver: Callable) -> None:
    _add(_created, receiver)


def place_events_in_steps(provider: Callable) -> None:
    _add(_event_places, provider)


def report_due_at_once(provider: Callable) -> None:
    _add(_due_at_once, provider)


def guard_start(guard: Callable) -> None:
    _add(_start_guards, guard)


def on_item_changed(receiver: Callable) -> None:
    _add(_item_changed, receiver)


def report_sign_offs(provider: Callable) -> None:
    _add(_sign_offs, provider)


def on_contacts_changed(receiver: Callable) -> None:
    _add(_contacts_changed, receiver)


def line_owner(item) -> SystemKind | None:
    """Which internal actor keeps this checklist line; None for a plain line people work."""
    for kind, predicate in _line_owners:
        if predicate(item):
            return kind
    return None


def open_work(deployment) -> list[str]:
    return [entry for provider in _open_work for entry in provider(deployment)]


def resume_needs_reason(deployment) -> str | None:
    return next((why for guard in _resume_guards if (why := guard(deployment))), None)


def deployment_finished(deployment, reason: str) -> None:
    for receiver in _finished:
        receiver(deployment, reason)


def deployment_created(deployment) -> None:
    """Each app sets up its part of the war room from the runbook (gates and approvals, the rollout plan)."""
    for receiver in _created:
        receiver(deployment)


def event_places(deployment):
    """(object_type, object_id, step_id) for every object another app placed in a step."""
    for provider in _event_places:
        yield from provider(deployment)


def due_at_once(deployment, new_t0) -> list[str]:
    """What re-anchoring T-0 to ``new_t0`` would set off at once (e.g. scheduled messages), in words."""
    return [entry for provider in _due_at_once for entry in provider(deployment, new_t0)]


def start_refused(deployment) -> str | None:
    """Why the scheduled deployment may not start now, in words (e.g. missing approvals); None: it may."""
    return next((why for guard in _start_guards if (why := guard(deployment))), None)


def item_changed(deployment_id: int) -> None:
    """A checklist line changed: e.g. votes cast against the old checklist become stale."""
    for receiver in _item_changed:
        receiver(deployment_id)


def contacts_changed(deployment) -> None:
    """The emergency contacts changed: e.g. a running escalation pages the new ones at once."""
    for receiver in _contacts_changed:
        receiver(deployment)


def signs_off() -> bool:
    """Whether an app records report sign-offs (the phone view then lists the missing ones)."""
    return bool(_sign_offs)


def signed_roles(deployment) -> set[int]:
    return {role_id for provider in _sign_offs for role_id in provider(deployment)}
