"""The structured record of a deployment: the one thing every report format renders.

PDF, Markdown and JSON are all made from the dict ``build_record`` returns, after a
JSON round trip, so the formats cannot disagree and the PDF carries, as its
attachment, exactly the data it was printed from. The record holds every event with
all hashed fields, so anyone can recompute the chain from the JSON alone.

The record is read in one REPEATABLE READ snapshot: a tick landing halfway through
would otherwise give a report whose items and final hash describe different moments.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from checklists.models import ItemKind
from deployments.board import load_board
from deployments.events import verify_chain
from deployments.models import Deployment, DeploymentState, Event
from reports import sections, signoffs
from reports.formatting import person, reader_zone
from reports.models import Outcome, SignOff

RECORD_FORMAT = "warroom-report/1"
ATTACHMENT_NAME = "warroom-record.json"

# The most cautious statement wins when signers disagree.
_OUTCOME_SEVERITY = [Outcome.SUCCESS, Outcome.SUCCESS_WITH_ISSUES, Outcome.ROLLED_BACK]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 1)


@contextmanager
def _snapshot():
    if connection.in_atomic_block:
        # Already inside a transaction (a test, or a caller's own): its isolation holds.
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def build_record(deployment_id: int, *, now: datetime | None = None, zone: str | None = None) -> dict:
    """Everything the report says, as JSON-ready data (times are UTC ISO strings).

    ``zone`` is the time zone the reader picked at export (default: the deployment's); the
    PDF and Markdown show times in it and say so, the JSON keeps UTC and names it."""
    now = now or timezone.now()
    with _snapshot():
        board = load_board(deployment_id, events=0)
        deployment = board.deployment
        record = {
            "format": RECORD_FORMAT,
            "generated_at": _iso(now),
            "interim": not deployment.is_finished,
            "deployment": _deployment(deployment),
            "people": _people(board.participants),
            "phases": _phases(board, deployment, now),
            "sections": sections.collect(deployment, zone=zone),
            "sign_offs": _sign_offs(deployment),
            "events": _events(deployment_id),
            "chain": _chain(deployment_id),
            # Which version of the final report this is (reports.versions); set by the report
            # job that signs it, None for files made on request (Markdown, JSON, the command line).
            "version": None,
        }
        _link_sign_off_lines(record, deployment)
    record["summary"] = _summary(record, deployment, now)
    record["display_zone"] = reader_zone(zone, deployment.timezone_name)
    # Round trip: what the renderers see is exactly what the JSON export and the PDF attachment hold.
    return json.loads(json.dumps(record, cls=DjangoJSONEncoder))


def _deployment(deployment: Deployment) -> dict:
    state = DeploymentState(deployment.state)
    leads = [person(p.user) for p in deployment.participants.filter(is_lead=True).select_related("user")]
    return {
        "id": deployment.pk,
        "name": deployment.name,
        "service": deployment.service,
        "version": deployment.version_label,
        "environment": deployment.environment,
        "runbook": str(deployment.runbook_version),
        "runbook_sha256": deployment.runbook_version.source_sha256,
        "state": state.value,
        "state_label": state.label,
        "timezone": deployment.timezone_name,
        "planned_t0": _iso(deployment.planned_t0),
        "actual_t0": _iso(deployment.started_at),
        "window_start": _iso(deployment.window_start),
        "window_end": _iso(deployment.window_end),
        "finished_at": _iso(deployment.finished_at),
        "leads": leads,
    }


def _people(participants) -> list[dict]:
    return [
        {
            "name": person(p.user),
            "username": p.user.get_username(),
            "lead": p.is_lead,
            "roles": [role.name for role in p.roles.all()],
        }
        for p in participants
    ]


def _minutes_late(step, t0, reference) -> float | None:
    """How far past its planned end a step finished (or, unfinished, is now); None if not late.

    Steps without items cannot be ticked done, so they are never called late.
    """
    planned_end = step.planned_end(t0)
    if planned_end is None or not step.total_leaves:
        return None
    overrun = _minutes_between(planned_end, step.actual_end or reference)
    return overrun if overrun > 0 else None


def _item_rows(step) -> list[dict]:
    """Items in checklist order, children under their group, with their depth."""
    rows = []

    def walk(item, depth):
        done_by = item.done_by_system or person(item.done_by)
        rows.append(
            {
                "id": item.pk,
                "number": item.number,
                "kind": item.kind,
                "text": item.text,
                "depth": depth,
                "is_group": item.is_group,
                "done": bool(getattr(item, "group_done", False)) if item.is_group else item.is_done,
                "checked": item.checked,
                "value": item.value,
                "options": item.options,
                "note": item.note,
                "done_by": done_by,
                "done_at": _iso(item.done_at),
                "by_system": bool(item.done_by_system),
            }
        )
        for child in item.child_list:
            walk(child, depth + 1)

    for root in step.roots:
        walk(root, 0)
    return rows


def _phases(board, deployment: Deployment, now: datetime) -> list[dict]:
    t0 = deployment.planned_t0
    # A finished deployment is judged at its end, a running one now.
    reference = deployment.finished_at or now
    phases = []
    for view in board.phases:
        steps = []
        for step in view.steps:
            steps.append(
                {
                    "id": step.pk,
                    "number": step.number,
                    "title": step.title,
                    "role": step.role.name if step.role else "",
                    "is_gate": step.is_gate,
                    "offset_minutes": step.offset_minutes,
                    "duration_min_minutes": step.duration_min_minutes,
                    "duration_max_minutes": step.duration_max_minutes,
                    "planned_start": _iso(step.planned_start(t0)),
                    "planned_end": _iso(step.planned_end(t0)),
                    "actual_start": _iso(step.actual_start),
                    "actual_end": _iso(step.actual_end),
                    "late_minutes": _minutes_late(step, t0, reference),
                    "done": step.done_leaves,
                    "total": step.total_leaves,
                    "items": _item_rows(step),
                }
            )
        phases.append({"id": view.phase.pk, "title": view.phase.title, "done": view.done, "total": view.total, "steps": steps})
    return phases


def _sign_offs(deployment: Deployment) -> dict:
    requested = signoffs.requested_roles(deployment)
    signed = list(SignOff.objects.filter(deployment=deployment).select_related("role", "user"))
    signed_roles = {s.role_id for s in signed}
    return {
        "requested": [role.name for role in requested],
        "missing": [role.name for role in requested if role.pk not in signed_roles],
        "signed": [
            {
                "role": s.role.name,
                "name": s.signer_name,
                "username": s.user.get_username(),
                "outcome": s.outcome,
                "outcome_label": Outcome(s.outcome).label,
                "statement": s.statement,
                "signed_at": _iso(s.signed_at),
            }
            for s in signed
        ],
    }


def _link_sign_off_lines(record: dict, deployment: Deployment) -> None:
    """The runbook's "Product Owner: ____ Date: ____" lines are answered by the sign-offs:
    point each at the sign-off given for its role, so the printed runbook does not read "blank"."""
    given = {s["role"]: s for s in record["sign_offs"]["signed"]}
    if not given:
        return
    steps = signoffs.sign_off_step_ids(deployment)
    roles = list(deployment.roles.all())
    for phase in record["phases"]:
        for step in phase["steps"]:
            if step["id"] not in steps:
                continue
            for item in step["items"]:
                role = signoffs.role_named_by(item["text"], roles)
                signed = given.get(role.name) if role else None
                if signed is not None and not item["value"]:
                    item["sign_off"] = {k: signed[k] for k in ("role", "name", "outcome_label", "signed_at")}


def _events(deployment_id: int) -> list[dict]:
    fields = (
        "seq",
        "created_at",
        "actor_id",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "summary",
        "before",
        "after",
        "prev_hash",
        "hash",
    )
    rows = Event.objects.filter(deployment_id=deployment_id).order_by("seq").values_list(*fields)
    # created_at exactly as hashed (microseconds kept): the chain can be recomputed from this.
    return [dict(zip(fields, (*row[:1], row[1].isoformat(), *row[2:]), strict=True)) for row in rows.iterator(chunk_size=2000)]


def _chain(deployment_id: int) -> dict:
    report = verify_chain(deployment_id)
    return {"count": report.count, "final_hash": report.last_hash, "intact": report.ok, "problem": report.problem}


def _signed_outcome(signed: list[dict]) -> dict | None:
    if not signed:
        return None
    worst = max((Outcome(s["outcome"]) for s in signed), key=_OUTCOME_SEVERITY.index)
    return {"outcome": worst.value, "label": worst.label, "unanimous": len({s["outcome"] for s in signed}) == 1}


def _summary(record: dict, deployment: Deployment, now: datetime) -> dict:
    steps = [step for phase in record["phases"] for step in phase["steps"]]
    planned_starts = [datetime.fromisoformat(s["planned_start"]) for s in steps if s["planned_start"]]
    planned_ends = [datetime.fromisoformat(s["planned_end"]) for s in steps if s["planned_end"]]
    planned_start = deployment.window_start or (min(planned_starts) if planned_starts else None)
    planned_end = deployment.window_end or (max(planned_ends) if planned_ends else None)
    actual_end = deployment.finished_at or (now if deployment.started_at else None)
    items_done = sum(phase["done"] for phase in record["phases"])
    items_total = sum(phase["total"] for phase in record["phases"])
    signed = record["sign_offs"]["signed"]
    state = DeploymentState(deployment.state)
    headline = state.label if deployment.is_finished else f"Interim: {state.label.lower()}"
    return {
        "headline": headline,
        "signed_outcome": _signed_outcome(signed),
        "planned_start": _iso(planned_start),
        "planned_end": _iso(planned_end),
        "planned_minutes": _minutes_between(planned_start, planned_end),
        "actual_minutes": _minutes_between(deployment.started_at, actual_end),
        "t0_delay_minutes": _minutes_between(deployment.planned_t0, deployment.started_at),
        "items_done": items_done,
        "items_total": items_total,
        "steps_total": len(steps),
        "steps_done": sum(1 for s in steps if s["total"] and s["done"] == s["total"]),
        "late_steps": [s["title"] for s in steps if s["late_minutes"]],
        "fields_filled": sum(
            1 for s in steps for i in s["items"] if i["kind"] in (ItemKind.FIELD, ItemKind.CHOICE) and i["value"]
        ),
        "notes": sum(1 for s in steps for i in s["items"] if i["note"]),
        "sections": {section["key"]: section["summary"] for section in record["sections"]},
    }
