"""The communications panel of the war room: one loader, rendered for the page and for pushes."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from comms.models import Channel, Delivery, Message, MessageTemplate, ScheduledSend, ScheduleState, StatusPage
from deployments.models import Deployment

TEMPLATE = "deployments/warroom.html"
RECENT_MESSAGES = 5


def load_comms(deployment_id: int) -> dict:
    deployment = Deployment.objects.only("planned_t0").get(pk=deployment_id)
    scheduled = list(
        ScheduledSend.objects.filter(deployment_id=deployment_id, state=ScheduleState.PENDING).select_related("template")
    )
    for s in scheduled:
        s.due = s.due_at(deployment.planned_t0)
    messages = list(
        Message.objects.filter(deployment_id=deployment_id)
        .select_related("sent_by")
        .prefetch_related("deliveries")
        .order_by("-created_at", "-id")[:RECENT_MESSAGES]
    )
    page = StatusPage.objects.filter(deployment_id=deployment_id).first()
    return {
        "templates": list(
            MessageTemplate.objects.filter(deployment_id=deployment_id).select_related("sender_role").prefetch_related("channels")
        ),
        "channel_count": Channel.objects.filter(deployment_id=deployment_id, is_active=True).count(),
        "scheduled": scheduled,
        "messages": messages,
        "failed_count": Delivery.objects.filter(deployment_id=deployment_id, state="failed").count(),
        "status_page": page,
        "status_page_url": settings.WARROOM_BASE_URL + reverse("comms:status_page", args=[page.token])
        if page and page.enabled
        else "",
    }


def render_comms_push(deployment_id: int) -> list[str]:
    from deployments.board import render_events

    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "comms": load_comms(deployment_id)}
    return [render_to_string(f"{TEMPLATE}#comms", context), render_events(deployment)]
