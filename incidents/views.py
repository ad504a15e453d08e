"""Incident endpoints of the war room (htmx: 204 and the push, or a toast), and the
post-deployment review page."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from deployments.models import Participant
from deployments.permissions import PermissionDenied, access_for, get_visible_deployment_or_404
from deployments.services import InvalidChange
from deployments.views import service_response
from incidents import review as review_service
from incidents import services
from incidents.models import ActionItem, FollowUpStatus, Incident


def _review_act(request, deployment, call, *, success: str):
    """Review forms: redirect with a message, or the page again with the refusal and a 4xx."""
    try:
        call()
    except InvalidChange as exc:
        status, message = 400, str(exc)
    except PermissionDenied as exc:
        status, message = 403, str(exc)
    except ObjectDoesNotExist:
        raise Http404("Not found") from None
    else:
        messages.success(request, success)
        return redirect("incidents:review", deployment.pk)
    messages.error(request, message)
    return _review_page(request, deployment, status=status)


def _incident_or_404(deployment, incident_pk) -> Incident:
    incident = Incident.objects.filter(deployment=deployment, pk=incident_pk).first()
    if incident is None:
        raise Http404("No such incident")
    return incident


@login_required
@require_POST
def raise_incident(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    return service_response(
        lambda: services.raise_incident(
            deployment.pk,
            request.user,
            severity=request.POST.get("severity", ""),
            title=request.POST.get("title", ""),
            description=request.POST.get("description", ""),
            impact=request.POST.get("impact", ""),
        ),
    )


@login_required
@require_POST
def update(request, pk, incident_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    incident = _incident_or_404(deployment, incident_pk)
    return service_response(
        lambda: services.update_incident(
            incident.pk,
            request.user,
            text=request.POST.get("text", ""),
            status=request.POST.get("status") or None,
            severity=request.POST.get("severity") or None,
        ),
    )


@login_required
@require_POST
def acknowledge(request, pk, incident_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    incident = _incident_or_404(deployment, incident_pk)
    return service_response(lambda: services.acknowledge(incident.pk, request.user))


# --- the review -------------------------------------------------------------------------------


def _parse_local(raw: str, zone_name: str) -> datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        naive = datetime.strptime(raw, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidChange("The meeting time must look like 2031-03-01T14:00.") from None
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(zone_name))


def _parse_date(raw: str) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidChange("The due date must look like 2031-03-01.") from None


def _int_or_none(raw: str, what: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidChange(f"Malformed form: {what} must be a number.") from None


def _review_page(request, deployment, *, status=200):
    access = access_for(request.user, deployment)
    data = review_service.review_data(deployment)
    context = {
        "d": deployment,
        "access": access,
        "review": data,
        "may_edit": services.may_act(access) and deployment.is_finished,
        "people": Participant.objects.filter(deployment=deployment).select_related("user"),
        "follow_up_choices": FollowUpStatus.choices,
        "held_at_local": data["held_at"].astimezone(zoneinfo.ZoneInfo(deployment.timezone_name)).strftime("%Y-%m-%dT%H:%M")
        if data["held_at"]
        else "",
    }
    return render(request, "incidents/review.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def review(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    if request.method == "POST":
        try:
            revision = _int_or_none(request.POST.get("revision", ""), "revision")
            held_at = _parse_local(request.POST.get("held_at", ""), deployment.timezone_name)
        except InvalidChange as exc:
            messages.error(request, str(exc))
            return _review_page(request, deployment, status=400)
        return _review_act(
            request,
            deployment,
            lambda: review_service.save_review(
                deployment.pk,
                request.user,
                notes=request.POST.get("notes", ""),
                lessons_learned=request.POST.get("lessons_learned", ""),
                follow_up_status=request.POST.get("follow_up_status", ""),
                held_at=held_at,
                revision=revision,
            ),
            success="Review saved.",
        )
    return _review_page(request, deployment)


@login_required
@require_POST
def action_add(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    try:
        owner_id = _int_or_none(request.POST.get("owner", ""), "owner")
        due = _parse_date(request.POST.get("due_date", ""))
    except InvalidChange as exc:
        messages.error(request, str(exc))
        return _review_page(request, deployment, status=400)
    return _review_act(
        request,
        deployment,
        lambda: review_service.add_action_item(
            deployment.pk, request.user, text=request.POST.get("text", ""), owner_id=owner_id, due_date=due
        ),
        success="Action item added.",
    )


@login_required
@require_POST
def action_status(request, pk, item_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    item = ActionItem.objects.filter(review__deployment=deployment, pk=item_pk).first()
    if item is None:
        raise Http404("No such action item")
    return _review_act(
        request,
        deployment,
        lambda: review_service.set_action_status(item.pk, request.user, request.POST.get("status", "")),
        success="Action item updated.",
    )
