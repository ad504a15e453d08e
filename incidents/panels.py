"""The incidents panel of the war room: one loader, rendered for the page and for pushes."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from deployments.models import Deployment
from incidents.models import Incident, IncidentStatus, Severity

TEMPLATE = "deployments/warroom.html"


def load_incidents(deployment_id: int) -> dict:
    incidents = list(
        Incident.objects.filter(deployment_id=deployment_id)
        .select_related("raised_by", "acknowledged_by", "rollback_gate")
        .prefetch_related("updates", "pages")
        .order_by("-raised_at", "-id")
    )
    # Worst first, then the newest: a SEV1 never hides below a cosmetic issue.
    open_ = sorted((i for i in incidents if i.is_open), key=lambda i: (i.severity, -i.raised_at.timestamp()))
    return {
        "open": open_,
        "resolved": [i for i in incidents if not i.is_open],
        "severities": Severity.choices,
        "statuses": IncidentStatus.choices,
        "wait_seconds": settings.WARROOM_ESCALATION_WAIT_SECONDS,
    }


def render_incidents_push(deployment_id: int) -> list[str]:
    from deployments.board import render_events

    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "incidents": load_incidents(deployment_id)}
    return [render_to_string(f"{TEMPLATE}#incidents", context), render_events(deployment)]
