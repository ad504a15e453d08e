"""Communications pages: the lead's channels and templates, previews, sends, and the
public status page (no login, reached by its unguessable token only)."""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from comms import conditions, services
from comms.models import (
    Channel,
    Message,
    MessageTemplate,
    ScheduledSend,
    ScheduleState,
    SendCondition,
    StatusPage,
    TemplateKind,
    Transport,
    WebhookEndpoint,
)
from comms.panels import annotate_schedule
from comms.rendering import VARIABLES
from deployments.models import DeploymentState, Event
from deployments.permissions import PermissionDenied, access_for, get_visible_deployment_or_404
from deployments.services import InvalidChange
from deployments.views import done_response, toast_response

OFFSET = re.compile(r"^T?\s*([+-])?\s*(\d{1,5})\s*(?:(h)\s*(?:(\d{1,2})\s*m?)?|(m|min))?$", re.IGNORECASE)


def parse_offset(raw: str) -> int | None:
    """'T-24h' → -1440, 'T+2h30' → 150, 'T+125' / '125m' → 125, 'T-0' → 0, '' → None."""
    text = (raw or "").strip()
    if not text:
        return None
    match = OFFSET.match(text)
    if not match:
        raise InvalidChange(f"“{text[:40]}” is not an offset from T-0: write e.g. T-24h, T-30m, T+2h30 or T+125.")
    sign, number, hours, minutes, _ = match.groups()
    value = int(number) * 60 + int(minutes or 0) if hours else int(number)
    return -value if sign == "-" else value


def _int(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidChange(f"Malformed form: {what} must be a number.") from None


def _ints(values, what: str) -> list[int]:
    return [_int(v, what) for v in values if v != ""]


def _flag(request, name: str) -> bool:
    return request.POST.get(name, "") in ("1", "on", "true", "yes")


def _page_context(request, deployment) -> dict:
    access = access_for(request.user, deployment)
    templates = list(
        MessageTemplate.objects.filter(deployment=deployment).select_related("sender_role").prefetch_related("channels")
    )
    for template in templates:
        template.may_send = services.may_send(access, template)
        template.rule = conditions.describe(template)
        template.pending = next(
            iter(annotate_schedule(list(template.scheduled_sends.filter(state=ScheduleState.PENDING)[:1]), deployment)), None
        )
    scheduled = annotate_schedule(
        list(ScheduledSend.objects.filter(deployment=deployment).select_related("template").order_by("-created_at")[:50]),
        deployment,
    )
    page = StatusPage.objects.filter(deployment=deployment).first()
    return {
        "d": deployment,
        "access": access,
        "channels": Channel.objects.filter(deployment=deployment).select_related("endpoint"),
        "templates": templates,
        "scheduled": scheduled,
        "messages_sent": Message.objects.filter(deployment=deployment)
        .select_related("sent_by")
        .prefetch_related("deliveries")[:100],
        "roles": deployment.roles.all(),
        "kinds": TemplateKind.choices,
        "deployment_states": DeploymentState.choices,
        "send_conditions": SendCondition.choices,
        "transports": Transport.choices,
        "endpoints": WebhookEndpoint.objects.all(),
        "variables": VARIABLES.items(),
        "status_page": page,
        "status_page_url": services.status_page_url(deployment),
    }


def _render_page(request, deployment, *, status=200):
    return render(request, "comms/comms.html", _page_context(request, deployment), status=status)


def _act(request, deployment, call, *, success: str):
    """Run a service call. htmx gets 204 (the push brings the change) or a toast; a plain
    form gets a redirect with a message, or the page again with the refusal and a 4xx."""
    try:
        call()
    except InvalidChange as exc:
        return _refuse(request, deployment, str(exc), 400)
    except PermissionDenied as exc:
        return _refuse(request, deployment, str(exc), 403)
    except ObjectDoesNotExist:
        raise Http404("Not found") from None
    if request.htmx:
        return done_response()
    messages.success(request, success)
    return redirect("comms:page", deployment.pk)


def _refuse(request, deployment, message: str, status: int):
    if request.htmx:
        return toast_response(message, status)
    messages.error(request, message)
    return _render_page(request, deployment, status=status)


def _template_or_404(deployment, template_pk) -> MessageTemplate:
    template = MessageTemplate.objects.filter(deployment=deployment, pk=template_pk).first()
    if template is None:
        raise Http404("No such message template")
    return template


@login_required
@require_GET
def page(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    return _render_page(request, deployment)


@login_required
@require_POST
def channel_save(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)

    def call():
        channel_id = request.POST.get("channel_id", "")
        services.save_channel(
            deployment,
            request.user,
            channel_id=_int(channel_id, "channel") if channel_id else None,
            name=request.POST.get("name", ""),
            transport=request.POST.get("transport", ""),
            recipients=request.POST.get("recipients", ""),
            endpoint=request.POST.get("endpoint", ""),
            carries_pages=_flag(request, "carries_pages"),
            is_active=_flag(request, "is_active") if "is_active_shown" in request.POST else True,
        )

    return _act(request, deployment, call, success="Channel saved.")


@login_required
@require_POST
def template_save(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)

    def call():
        template_id = request.POST.get("template_id", "")
        sender = request.POST.get("sender_role", "")
        # No state ticked: a new template takes its kind's default, a form without the rule's
        # fields keeps what the template has; an edit form that unticked them all is refused.
        send_states = request.POST.getlist("send_states")
        if not send_states and not (template_id and "send_rule_shown" in request.POST):
            send_states = None
        services.save_template(
            deployment,
            request.user,
            template_id=_int(template_id, "template") if template_id else None,
            name=request.POST.get("name", ""),
            kind=request.POST.get("kind", TemplateKind.OTHER),
            subject=request.POST.get("subject", ""),
            body=request.POST.get("body", ""),
            offset_minutes=parse_offset(request.POST.get("offset", "")),
            channel_ids=_ints(request.POST.getlist("channels"), "channel"),
            sender_role_id=_int(sender, "sender role") if sender else None,
            is_public=_flag(request, "is_public"),
            send_states=send_states,
            send_condition=request.POST.get("send_condition") or None,
        )

    return _act(request, deployment, call, success="Template saved.")


@login_required
@require_POST
def template_delete(request, pk, template_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    template = _template_or_404(deployment, template_pk)
    return _act(
        request, deployment, lambda: services.delete_template(template.pk, request.user), success=f"“{template.name}” deleted."
    )


@login_required
@require_GET
def template_preview(request, pk, template_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    template = _template_or_404(deployment, template_pk)
    access = access_for(request.user, deployment)
    try:
        rendered = services.preview(template, request.user)
    except InvalidChange as exc:
        return toast_response(str(exc), 400)
    context = {
        "d": deployment,
        "template": template,
        "rendered": rendered,
        "channels": template.channels.filter(is_active=True),
        "may_send": services.may_send(access, template),
        "sample_incident": services.uses_incident(template),
        "rule": conditions.describe(template),
        "held_now": conditions.hold_reason(template, deployment),
    }
    name = "comms/preview.html#preview" if request.htmx else "comms/preview.html"
    return render(request, name, context)


@login_required
@require_POST
def template_send(request, pk, template_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    template = _template_or_404(deployment, template_pk)
    return _act(
        request,
        deployment,
        lambda: services.send_template(template.pk, request.user),
        success=f"“{template.name}” is on its way.",
    )


@login_required
@require_POST
def template_schedule(request, pk, template_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    template = _template_or_404(deployment, template_pk)
    return _act(
        request,
        deployment,
        lambda: services.schedule_template(template.pk, request.user),
        success=f"“{template.name}” scheduled.",
    )


@login_required
@require_POST
def scheduled_cancel(request, pk, scheduled_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    scheduled = ScheduledSend.objects.filter(deployment=deployment, pk=scheduled_pk).first()
    if scheduled is None:
        raise Http404("No such scheduled message")
    reason = request.POST.get("reason") or request.headers.get("HX-Prompt", "")
    return _act(
        request,
        deployment,
        lambda: services.cancel_scheduled(scheduled.pk, request.user, reason=reason),
        success="Scheduled message cancelled.",
    )


@login_required
@require_POST
def status_page_action(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    action = request.POST.get("action", "")
    return _act(
        request,
        deployment,
        lambda: services.set_status_page(deployment, request.user, action),
        success={
            "enable": "The status page is public.",
            "regenerate": "The status page has a new link.",
            "revoke": "The status page is no longer public.",
        }.get(action, "Done."),
    )


# --- the public status page -------------------------------------------------------------------

STATUS_PAGE_REFRESH_SECONDS = 60
PUBLIC_STATE = {
    DeploymentState.DRAFT: ("Planned", "planned"),
    DeploymentState.SCHEDULED: ("Scheduled maintenance", "scheduled"),
    DeploymentState.IN_PROGRESS: ("Maintenance in progress", "in-progress"),
    DeploymentState.PAUSED: ("Maintenance in progress", "in-progress"),
    DeploymentState.COMPLETED: ("Maintenance complete", "done"),
    DeploymentState.ROLLED_BACK: ("Maintenance ended: service restored", "done"),
    DeploymentState.ABORTED: ("Maintenance cancelled", "done"),
}


# Events that change what the public page shows (besides public messages).
STATUS_PAGE_EVENTS = ("deployment.state", "deployment.reanchored", "deployment.created")


@require_GET
def status_page(request, token):
    """Public: no login. Only what users need: state since when, the window (start, expected or
    actual end), the latest public message and when any of it last changed; times in the
    deployment's zone, named."""
    page = StatusPage.objects.filter(token=token, enabled=True).select_related("deployment").first() if token else None
    if page is None:
        raise Http404("No such status page")
    deployment = page.deployment
    state = DeploymentState(deployment.state)
    label, css = PUBLIC_STATE[state]
    latest = Message.objects.filter(deployment=deployment, public=True).order_by("-created_at", "-id").first()
    planned_end = conditions.expected_end(deployment)
    changed = (
        Event.objects.filter(deployment=deployment, action__in=STATUS_PAGE_EVENTS)
        .order_by("-seq")
        .values_list("created_at", flat=True)
        .first()
    )
    last_updated = max((t for t in (changed, latest.created_at if latest else None) if t is not None), default=None)
    now = timezone.now()
    response = render(
        request,
        "comms/status_page.html",
        {
            "service": deployment.service,
            "state": state.value,
            "state_label": label,
            "state_css": css,
            "zone": deployment.timezone_name,
            "start": deployment.window_start or deployment.planned_t0,
            "planned_end": planned_end,
            "started_at": deployment.started_at,
            "finished_at": deployment.finished_at,
            "overrunning": not deployment.is_finished and planned_end is not None and now > planned_end,
            "latest": latest,
            "last_updated": last_updated,
            "now": now,
            "refresh_seconds": STATUS_PAGE_REFRESH_SECONDS,
        },
    )
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response
