"""The post-deployment review: planned vs actual per phase, the incidents, lessons
learned, action items — editable by the people who ran the deployment once it is
finished, and readable by other code through ``review_data`` (e.g. the PDF report).
"""

from __future__ import annotations

from datetime import date

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from deployments import live
from deployments.events import record_event
from deployments.locks import lock_deployment
from deployments.models import Deployment, Participant, Phase, Step
from deployments.permissions import ACT, require
from deployments.services import InvalidChange
from incidents import panels
from incidents.models import ActionItem, FollowUpStatus, Incident, Review
from reports.sections import Passage, Section, Table

MAX_TEXT = 20000


def _minutes(start, end) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60)


def _person(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else ""


# --- reading ----------------------------------------------------------------------------------


def planned_vs_actual(deployment: Deployment) -> list[dict]:
    """Per phase (and per step): planned start/end from T-0 + the runbook's offsets and
    durations, actual start/end from the checklist, and the differences in minutes."""
    t0 = deployment.planned_t0
    steps = (
        Step.objects.filter(deployment=deployment)
        .select_related("role")
        .annotate(leaves=Count("items", filter=Q(items__is_group=False)))
        .order_by("phase__position", "position", "id")
    )
    by_phase: dict[int, list[dict]] = {}
    for step in steps:
        planned_start, planned_end = step.planned_start(t0), step.planned_end(t0)
        by_phase.setdefault(step.phase_id, []).append(
            {
                "step": step.title,
                "number": step.number,
                "role": step.role.name if step.role else "",
                "has_items": step.leaves > 0,
                "planned_start": planned_start,
                "planned_end": planned_end,
                "planned_minutes": _minutes(planned_start, planned_end),
                "actual_start": step.actual_start,
                "actual_end": step.actual_end,
                "actual_minutes": _minutes(step.actual_start, step.actual_end),
                "start_delta_minutes": _minutes(planned_start, step.actual_start),
                "end_delta_minutes": _minutes(planned_end, step.actual_end),
            }
        )
    phases = []
    for phase in Phase.objects.filter(deployment=deployment).order_by("position", "id"):
        rows = by_phase.get(phase.pk, [])
        planned_starts = [r["planned_start"] for r in rows if r["planned_start"]]
        planned_ends = [r["planned_end"] for r in rows if r["planned_end"]]
        actual_starts = [r["actual_start"] for r in rows if r["actual_start"]]
        with_items = [r for r in rows if r["has_items"]]
        complete = bool(with_items) and all(r["actual_end"] for r in with_items)
        planned_start = min(planned_starts, default=None)
        planned_end = max(planned_ends, default=None)
        actual_start = min(actual_starts, default=None)
        actual_end = max(r["actual_end"] for r in with_items) if complete else None
        phases.append(
            {
                "phase": phase.title,
                "planned_start": planned_start,
                "planned_end": planned_end,
                "planned_minutes": _minutes(planned_start, planned_end),
                "actual_start": actual_start,
                "actual_end": actual_end,
                "actual_minutes": _minutes(actual_start, actual_end),
                "start_delta_minutes": _minutes(planned_start, actual_start),
                "end_delta_minutes": _minutes(planned_end, actual_end),
                "complete": complete,
                "has_items": bool(with_items),
                "steps": rows,
            }
        )
    return phases


def incident_records(deployment: Deployment) -> list[dict]:
    incidents = (
        Incident.objects.filter(deployment=deployment)
        .select_related("raised_by", "acknowledged_by", "rollback_gate")
        .prefetch_related("updates", "pages")
        .order_by("number")
    )
    records = []
    for incident in incidents:
        gate = incident.rollback_gate
        records.append(
            {
                "id": incident.pk,
                "label": f"INC-{incident.number}",
                "number": incident.number,
                "severity": incident.severity,
                "severity_label": incident.severity_label,
                "title": incident.title,
                "description": incident.description,
                "impact": incident.impact,
                "status": incident.status,
                "status_label": incident.get_status_display(),
                "raised_by": _person(incident.raised_by),
                "raised_at": incident.raised_at,
                "resolved_at": incident.resolved_at,
                "duration_minutes": _minutes(incident.raised_at, incident.resolved_at),
                "acknowledged_by": _person(incident.acknowledged_by),
                "acknowledged_at": incident.acknowledged_at,
                "escalation_level": incident.escalation_level,
                "pages": [{"level": p.level, "contact": p.contact_name, "at": p.created_at} for p in incident.pages.all()],
                "rollback_gate": {
                    "title": gate.title,
                    "state": gate.state,
                    "state_label": gate.get_state_display(),
                    "decision": gate.decision,
                    # In the gate's own words, as the war room shows it (the runbook's "GO" / "NO-GO").
                    "decision_label": gate.label_for(gate.decision),
                    "summary": gate.decision_summary,
                }
                if gate
                else None,
                "timeline": [
                    {"at": u.created_at, "by": u.author_label, "kind": u.kind, "text": u.text} for u in incident.updates.all()
                ],
            }
        )
    return records


def review_data(deployment: Deployment) -> dict:
    """Everything the review holds, as plain data (datetimes are aware, dates are dates):

    ``deployment`` (names, T-0, start/end), ``available`` (the deployment is finished),
    ``phases`` (planned vs actual, with ``steps``), ``totals``, ``incidents`` (with their
    timelines), ``notes``, ``lessons_learned``, ``held_at``, ``follow_up_status``,
    ``action_items`` (text, owner, due date, status, overdue), ``updated_at``/``updated_by``.
    """
    deployment = Deployment.objects.get(pk=deployment.pk)  # as it is now, not as the caller loaded it
    review = Review.objects.filter(deployment=deployment).select_related("updated_by").first()
    phases = planned_vs_actual(deployment)
    planned_start = min((p["planned_start"] for p in phases if p["planned_start"]), default=None)
    planned_end = max((p["planned_end"] for p in phases if p["planned_end"]), default=None)
    today = timezone.localdate()
    items = list(ActionItem.objects.filter(review=review).select_related("owner").order_by("due_date", "id")) if review else []
    return {
        "deployment": {
            "id": deployment.pk,
            "name": deployment.name,
            "service": deployment.service,
            "version": deployment.version_label,
            "environment": deployment.environment,
            "state": deployment.state,
            "state_label": deployment.get_state_display(),
            "timezone": deployment.timezone_name,
            "planned_t0": deployment.planned_t0,
            "started_at": deployment.started_at,
            "finished_at": deployment.finished_at,
        },
        "available": deployment.is_finished,
        "phases": phases,
        "totals": {
            "planned_start": planned_start,
            "planned_end": planned_end,
            "planned_minutes": _minutes(planned_start, planned_end),
            "actual_start": deployment.started_at,
            "actual_end": deployment.finished_at,
            "actual_minutes": _minutes(deployment.started_at, deployment.finished_at),
        },
        "incidents": incident_records(deployment),
        "held_at": review.held_at if review else None,
        "notes": review.notes if review else "",
        "lessons_learned": review.lessons_learned if review else "",
        "follow_up_status": review.follow_up_status if review else FollowUpStatus.OPEN,
        "follow_up_status_label": FollowUpStatus(review.follow_up_status).label if review else FollowUpStatus.OPEN.label,
        "action_items": [
            {
                "id": item.pk,
                "text": item.text,
                "owner": _person(item.owner),
                "owner_id": item.owner_id,
                "due_date": item.due_date,
                "status": item.status,
                "status_label": item.get_status_display(),
                "done_at": item.done_at,
                "overdue": bool(item.due_date and item.due_date < today and item.status != FollowUpStatus.DONE),
            }
            for item in items
        ],
        "revision": review.revision if review else 0,
        "updated_at": review.updated_at if review else None,
        "updated_by": _person(review.updated_by) if review else "",
    }


def incidents_section(deployment: Deployment):
    """The report's "incidents" slot (see reports.sections)."""
    records = incident_records(deployment)
    if not records:
        return None
    rows = [
        [
            r["label"],
            r["severity_label"],
            r["title"],
            r["status_label"],
            r["raised_by"],
            r["raised_at"],
            r["resolved_at"],
            r["impact"],
        ]
        for r in records
    ]
    timeline = [[r["label"], u["at"], u["by"], u["text"]] for r in records for u in r["timeline"]]
    open_count = sum(1 for r in records if r["status"] != "resolved")
    by_severity = {}
    for r in records:
        by_severity[r["severity_label"]] = by_severity.get(r["severity_label"], 0) + 1
    summary = (
        f"{len(records)} incident{'s' if len(records) != 1 else ''} ("
        + ", ".join(f"{n} {s}" for s, n in sorted(by_severity.items()))
        + f"), {open_count} still open"
    )
    return Section(
        summary=summary,
        tables=[
            Table(
                caption="Incidents",
                columns=["Incident", "Severity", "Title", "Status", "Raised by", "Raised", "Resolved", "Impact"],
                rows=rows,
            ),
            Table(caption="Incident timelines", columns=["Incident", "When", "Who", "What"], rows=timeline),
        ],
        records=records,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def review_section(deployment: Deployment):
    """The report's "review" slot (see reports.sections): what the review page shows that belongs
    in the record — outcome and follow-up, lessons learned, minutes, action items with owner,
    due date and state, and planned vs actual per phase. The incidents have a slot of their own.

    Nothing is said until the review has been written: an empty review is no review. What the
    record holds is what was decided; "overdue" depends on the day the report is read, so it is
    left to the reader (the due date is there)."""
    if not Review.objects.filter(deployment=deployment).exists():
        return None
    data = review_data(deployment)
    items = data["action_items"]
    if not (data["lessons_learned"] or data["notes"] or items or data["held_at"]):
        return None
    facts = [
        ["Outcome", data["deployment"]["state_label"]],
        ["Review meeting", data["held_at"] or "not recorded"],
        ["Follow-up", data["follow_up_status_label"]],
    ]
    if data["updated_at"]:
        facts += [["Last saved by", data["updated_by"] or "—"], ["Last saved", data["updated_at"]]]
    phases = [p for p in data["phases"] if p["has_items"] or p["planned_start"]]
    not_done = sum(1 for item in items if item["status"] != FollowUpStatus.DONE)
    summary = f"Follow-up {data['follow_up_status_label'].lower()}; {_plural(len(items), 'action item')}"
    summary += f", {not_done} not done" if items else ""
    summary += "; lessons learned recorded" if data["lessons_learned"] else ""
    totals = data["totals"]
    record = {
        "outcome": data["deployment"]["state"],
        "outcome_label": data["deployment"]["state_label"],
        "held_at": data["held_at"],
        "follow_up_status": data["follow_up_status"],
        "follow_up_status_label": data["follow_up_status_label"],
        "lessons_learned": data["lessons_learned"],
        "notes": data["notes"],
        "revision": data["revision"],
        "updated_at": data["updated_at"],
        "updated_by": data["updated_by"],
        "action_items": [
            {
                "text": item["text"],
                "owner": item["owner"],
                "due_date": item["due_date"],
                "status": item["status"],
                "status_label": item["status_label"],
                "done_at": item["done_at"],
            }
            for item in items
        ],
        "planned_vs_actual": {
            "planned_minutes": totals["planned_minutes"],
            "actual_minutes": totals["actual_minutes"],
            "phases": [{key: phase[key] for key in phase if key not in ("steps", "has_items")} for phase in phases],
        },
    }

    def delta(minutes):
        return "" if minutes is None else f"{minutes:+d} min"

    def span(minutes):
        return "" if minutes is None else f"{minutes} min"

    return Section(
        summary=summary,
        passages=[Passage("Lessons learned", data["lessons_learned"]), Passage("Review notes", data["notes"])],
        tables=[
            Table(caption="Outcome and follow-up", columns=["", ""], rows=facts),
            Table(
                caption="Action items",
                columns=["Action", "Owner", "Due", "State", "Done"],
                rows=[
                    [item["text"], item["owner"] or "—", item["due_date"] or "—", item["status_label"], item["done_at"]]
                    for item in items
                ],
            )
            if items
            else Table(caption="Action items", columns=["Action"], rows=[["None were recorded."]]),
            Table(
                caption="Planned vs actual, per phase",
                columns=["Phase", "Planned start", "Planned", "Actual start", "Actual", "End Δ"],
                rows=[
                    [
                        p["phase"],
                        p["planned_start"] or "—",
                        span(p["planned_minutes"]),
                        p["actual_start"] or ("not started" if p["has_items"] else "—"),
                        span(p["actual_minutes"]) if p["actual_end"] else ("not finished" if p["actual_start"] else ""),
                        delta(p["end_delta_minutes"]),
                    ]
                    for p in phases
                ],
                note="Δ: minutes after (+) or before (−) the planned end.",
            ),
        ],
        records=[record],
    )


# --- editing ----------------------------------------------------------------------------------


def _push(deployment_id: int) -> None:
    live.publish_on_commit(deployment_id, lambda: panels.render_incidents_push(deployment_id))


def _require_editor(actor, deployment: Deployment) -> None:
    require(actor, ACT, deployment, refusal="Observers read the review; people holding a role, or the lead, write it.")
    if not deployment.is_finished:
        raise InvalidChange("The review opens when the deployment is finished (completed, rolled back or aborted).")


def _review_for(deployment: Deployment) -> Review:
    lock_deployment(deployment.pk)
    review, _ = Review.objects.get_or_create(deployment=deployment)
    return Review.objects.select_for_update().get(pk=review.pk)


@transaction.atomic
def save_review(
    deployment_id: int,
    actor,
    *,
    notes: str,
    lessons_learned: str,
    follow_up_status: str,
    held_at=None,
    revision: int | None = None,
) -> Review:
    deployment = lock_deployment(deployment_id)
    _require_editor(actor, deployment)
    if follow_up_status not in FollowUpStatus.values:
        raise InvalidChange("Follow-up status is open, in progress or done.")
    if len(notes or "") > MAX_TEXT or len(lessons_learned or "") > MAX_TEXT:
        raise InvalidChange(f"Notes and lessons learned are limited to {MAX_TEXT:,} characters each.")
    review = _review_for(deployment)
    if revision is not None and revision != review.revision:
        who = _person(review.updated_by) or "someone"
        raise InvalidChange(f"{who} saved the review meanwhile: reload to see their changes, then save again.")
    before = {"notes": review.notes, "lessons": review.lessons_learned, "follow_up": review.follow_up_status}
    review.notes, review.lessons_learned = (notes or "").strip(), (lessons_learned or "").strip()
    review.follow_up_status, review.held_at = follow_up_status, held_at
    after = {"notes": review.notes, "lessons": review.lessons_learned, "follow_up": review.follow_up_status}
    review.revision += 1
    review.updated_at, review.updated_by = timezone.now(), actor
    review.save()
    record_event(
        deployment.pk,
        actor=actor,
        action="review.saved",
        obj=review,
        summary=f"Review saved (follow-up {review.get_follow_up_status_display().lower()})",
        before=before,
        after=after,
    )
    _push(deployment.pk)
    return review


@transaction.atomic
def add_action_item(deployment_id: int, actor, *, text: str, owner_id: int | None, due_date: date | None) -> ActionItem:
    deployment = lock_deployment(deployment_id)
    _require_editor(actor, deployment)
    text = (text or "").strip()
    if not text or len(text) > 300:
        raise InvalidChange("Say what is to be done (up to 300 characters).")
    owner = None
    if owner_id is not None:
        if not Participant.objects.filter(deployment=deployment, user_id=owner_id).exists():
            raise InvalidChange("The owner must be one of this deployment's people.")
        owner = get_user_model().objects.get(pk=owner_id)
    review = _review_for(deployment)
    item = ActionItem.objects.create(
        review=review, text=text, owner=owner, due_date=due_date, created_by=actor, created_at=timezone.now()
    )
    record_event(
        deployment.pk,
        actor=actor,
        action="review.action_added",
        obj=item,
        summary=f"Action item: {text}"
        + (f" — {_person(owner)}" if owner else "")
        + (f", due {due_date:%Y-%m-%d}" if due_date else ""),
        after={"text": text, "owner": owner_id, "due": due_date},
    )
    _push(deployment.pk)
    return item


@transaction.atomic
def set_action_status(item_id: int, actor, status: str) -> ActionItem:
    deployment_id = ActionItem.objects.filter(pk=item_id).values_list("review__deployment_id", flat=True).first()
    if deployment_id is None:
        raise ActionItem.DoesNotExist
    lock_deployment(deployment_id)  # deployments/locks.py: the deployment first
    item = ActionItem.objects.select_for_update(of=("self",)).select_related("review__deployment").get(pk=item_id)
    deployment = item.review.deployment
    _require_editor(actor, deployment)
    if status not in FollowUpStatus.values:
        raise InvalidChange("Status is open, in progress or done.")
    if status == item.status:
        return item
    before = item.status
    item.status = status
    item.done_at = timezone.now() if status == FollowUpStatus.DONE else None
    item.save(update_fields=["status", "done_at"])
    record_event(
        deployment.pk,
        actor=actor,
        action="review.action_status",
        obj=item,
        summary=f"Action item “{item.text[:120]}”: {FollowUpStatus(before).label} → {item.get_status_display()}",
        before={"status": before},
        after={"status": status},
    )
    _push(deployment.pk)
    return item
