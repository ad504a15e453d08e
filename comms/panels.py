"""The communications panel of the war room: one loader, rendered for the page and for pushes
from the same partial of comms/panel.html (registered in deployments.panels by comms/apps.py)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from comms import conditions
from comms.models import Channel, Delivery, Message, MessageTemplate, ScheduledSend, ScheduleState, StatusPage
from deployments.board import render_events
from deployments.models import Deployment

TEMPLATE = "comms/panel.html"
RECENT_MESSAGES = 5


def annotate_schedule(scheduled: list[ScheduledSend], deployment: Deployment, now=None) -> list[ScheduledSend]:
    """Each row gets ``due`` (when, from T-0 as it is now) and, for a pending row that is due but
    may not go out, ``held`` (why, and when it will: comms.conditions, as beat will judge it)."""
    now = now or timezone.now()
    for s in scheduled:
        s.due = s.due_at(deployment.planned_t0)
        s.held = ""
        if s.state == ScheduleState.PENDING and s.due <= now and s.template is not None:
            s.held = conditions.hold_reason(s.template, deployment, now) or ""
    return scheduled


def load_comms(deployment_id: int, board=None, *, deployment: Deployment | None = None) -> dict:
    if deployment is None:
        deployment = board.deployment if board is not None else Deployment.objects.get(pk=deployment_id)
    scheduled = annotate_schedule(
        list(ScheduledSend.objects.filter(deployment_id=deployment_id, state=ScheduleState.PENDING).select_related("template")),
        deployment,
    )
    messages = list(
        Message.objects.filter(deployment_id=deployment_id)
        .select_related("sent_by")
        .prefetch_related("deliveries")
        .order_by("-created_at", "-id")[:RECENT_MESSAGES]
    )
    counts = _counts(deployment_id)
    return {
        "templates": list(
            MessageTemplate.objects.filter(deployment_id=deployment_id).select_related("sender_role").prefetch_related("channels")
        ),
        "channel_count": counts["channels"],
        "scheduled": scheduled,
        "messages": messages,
        "failed_count": counts["failed"],
        "status_page_url": settings.WARROOM_BASE_URL + reverse("comms:status_page", args=[counts["page_token"]])
        if counts["page_token"]
        else "",
    }


def _counts(deployment_id: int) -> dict:
    """Active channels, failed deliveries and the token of the status page if it is public, in one query."""

    def count(queryset):
        return Subquery(queryset.values("deployment_id").annotate(n=Count("pk")).values("n"))

    row = (
        Deployment.objects.filter(pk=deployment_id)
        .annotate(
            channels=count(Channel.objects.filter(deployment_id=OuterRef("pk"), is_active=True)),
            failed=count(Delivery.objects.filter(deployment_id=OuterRef("pk"), state="failed")),
            page_token=Subquery(StatusPage.objects.filter(deployment_id=OuterRef("pk"), enabled=True).values("token")[:1]),
        )
        .values("channels", "failed", "page_token")
        .first()
    ) or {}
    return {
        "channels": row.get("channels") or 0,
        "failed": row.get("failed") or 0,
        "page_token": row.get("page_token"),
    }


def render_comms_push(deployment_id: int) -> list[str]:
    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "comms": load_comms(deployment_id, deployment=deployment)}
    return [render_to_string(f"{TEMPLATE}#comms", context), render_events(deployment)]
