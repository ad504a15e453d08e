"""The incidents panel of the war room: one loader, rendered for the page and for pushes
from the same partial of incidents/panel.html (registered in deployments.panels by incidents/apps.py)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from deployments.board import render_events
from deployments.models import Deployment
from incidents import services
from incidents.models import Incident, IncidentStatus, Severity

TEMPLATE = "incidents/panel.html"


def load_incidents(deployment_id: int, board=None) -> dict:
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
        "unpaged": unpaged_sev1s(deployment_id, open_),
        "resolved": [i for i in incidents if not i.is_open],
        "severities": Severity.choices,
        "statuses": IncidentStatus.choices,
        "wait_seconds": settings.WARROOM_ESCALATION_WAIT_SECONDS,
    }


def unpaged_sev1s(deployment_id: int, open_incidents: list[Incident]) -> list[dict]:
    """Open, unacknowledged SEV1s while the escalation list can reach nobody by e-mail: the banner
    on the war room and the TV, and the lead's notice. Each with who Warroom paged instead."""
    waiting = [i for i in open_incidents if i.severity == Severity.SEV1 and not i.acknowledged_at]
    if not waiting or services.escalation_list_reaches_anyone(deployment_id):
        return []
    banners = []
    for incident in waiting:
        instead = [p for p in incident.pages.all() if p.user_id and p.contact_email]
        headline = services.NOBODY_TO_PAGE if not instead else "SEV1 open and no emergency contact can be paged: add contacts"
        banners.append({"incident": incident, "headline": headline, "instead": instead})
    return banners


def render_incidents_push(deployment_id: int) -> list[str]:
    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "incidents": load_incidents(deployment_id)}
    return [render_to_string(f"{TEMPLATE}#incidents", context), render_events(deployment)]
