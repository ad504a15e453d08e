"""Pages and htmx endpoints of the dashboard and the war room.

Views parse input, ask deployments.permissions, and call deployments.services;
errors from services come back as a 4xx with a message the page shows.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checklists.models import RunbookVersion
from deployments import board as board_module
from deployments import event_log, live, screens, services
from deployments.events import verify_chain
from deployments.forms import ContactForm, DeploymentForm, ParticipantForm, ReanchorForm, parse_id
from deployments.models import ACTIVE_STATES, FINISHED_STATES, DeploymentState, Item
from deployments.permissions import (
    PermissionDenied,
    access_for,
    get_visible_deployment_or_404,
    may_create_deployments,
    require_global,
    visible_deployments,
)

# A refusal may quote what was typed; a header carries at most this much of it.
TOAST_HEADER_MAX = 300


def toast_trigger(message: str) -> str:
    """The HX-Trigger value that shows `message` as a toast, cut to TOAST_HEADER_MAX characters."""
    if len(message) > TOAST_HEADER_MAX:
        message = message[: TOAST_HEADER_MAX - 1] + "…"
    return json.dumps({"warroom:toast": message})


def toast_response(message: str, status: int) -> HttpResponse:
    """A 4xx the page shows as a toast (warroom.js reads HX-Trigger / the body)."""
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["HX-Trigger"] = toast_trigger(message)
    return response


def done_response() -> HttpResponse:
    """The change is saved; every screen, this one included, gets it through the live push
    (or, without a websocket, warroom.js re-fetches the board at once). Rendering the
    fragments here too would double the work of every click."""
    return HttpResponse(status=204)


def service_response(call) -> HttpResponse:
    """Run one service call for an htmx action: 204 when done (the push shows the result),
    a 400/403 with the refusal in words, 404 for what the person may not see."""
    try:
        call()
    except services.InvalidChange as exc:
        return toast_response(str(exc), getattr(exc, "http_status", 400))
    except PermissionDenied as exc:
        return toast_response(str(exc), 403)
    except ObjectDoesNotExist:
        raise Http404("Not found") from None
    return done_response()


def fragments_response(fragments: list[str], *, toast: str | None = None) -> HttpResponse:
    response = HttpResponse("".join(fragments))
    if toast:
        response["HX-Trigger"] = toast_trigger(toast)
    return response


# --- dashboard ---------------------------------------------------------------------


@login_required
@require_GET
def dashboard(request):
    deployments = (
        visible_deployments(request.user)
        .annotate(
            total_items=Count("items", filter=Q(items__is_group=False), distinct=True),
            done_items=Count(
                "items", filter=Q(items__is_group=False) & (Q(items__checked=True) | ~Q(items__value="")), distinct=True
            ),
        )
        .order_by("planned_t0")
    )
    filters = {key: request.GET.get(key, "").strip() for key in ("service", "environment", "state")}
    if filters["service"]:
        deployments = deployments.filter(service=filters["service"])
    if filters["environment"]:
        deployments = deployments.filter(environment=filters["environment"])
    if filters["state"]:
        if filters["state"] not in DeploymentState.values:
            return HttpResponseBadRequest("Unknown state filter")
        deployments = deployments.filter(state=filters["state"])
    rows = list(deployments)
    now = timezone.now()
    upcoming = [d for d in rows if d.state in (DeploymentState.DRAFT, DeploymentState.SCHEDULED)]
    active = [d for d in rows if d.state in ACTIVE_STATES]
    past = sorted((d for d in rows if d.state in FINISHED_STATES), key=lambda d: d.finished_at or d.planned_t0, reverse=True)
    all_visible = visible_deployments(request.user)
    context = {
        "upcoming": upcoming,
        "active": active,
        "past": past,
        "filters": filters,
        "services": sorted(set(all_visible.values_list("service", flat=True))),
        "environments": sorted(set(all_visible.values_list("environment", flat=True))),
        "states": DeploymentState.choices,
        "calendar": _calendar(upcoming + active, now),
        "now": now,
    }
    return render(request, "deployments/dashboard.html", context)


def _calendar(deployments, now, weeks=4):
    """Four weeks from this Monday, each day with the deployments whose T-0 falls on it (UTC)."""
    start = (now - timedelta(days=now.weekday())).date()
    by_day = {}
    for d in deployments:
        by_day.setdefault(d.planned_t0.date(), []).append(d)
    return [
        [
            {
                "date": start + timedelta(days=w * 7 + i),
                "items": by_day.get(start + timedelta(days=w * 7 + i), []),
                "today": start + timedelta(days=w * 7 + i) == now.date(),
            }
            for i in range(7)
        ]
        for w in range(weeks)
    ]


@login_required
def deployment_create(request):
    require_global(request.user, may_create_deployments, "create deployments")
    form = DeploymentForm(request.POST or None, initial={"runbook_version": request.GET.get("version")})
    if not RunbookVersion.objects.exists():
        messages.info(request, "Import a runbook first: a deployment is created from one.")
        return redirect("checklists:list")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            deployment = services.create_deployment(
                data["runbook_version"],
                lead=request.user,
                name=data["name"],
                service=data["service"],
                version_label=data["version_label"],
                environment=data["environment"],
                planned_t0=data["planned_t0"],
                timezone_name=data["timezone"],
                window_start=data["window_start"],
                window_end=data["window_end"],
            )
        except services.InvalidChange as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Deployment “{deployment.name}” created. Add people to its roles next.")
            return redirect("deployments:people", deployment.pk)
    return render(request, "deployments/create.html", {"form": form}, status=400 if form.errors else 200)


# --- the war room ------------------------------------------------------------------


@login_required
@require_GET
def warroom(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk, related=("runbook_version",))
    context = board_module.board_context(deployment.pk, deployment=deployment)
    context.update(
        access=access_for(request.user, deployment, participants=context["board"].participants),
        poll_seconds=settings.WARROOM_POLL_SECONDS,
        beat_seconds=settings.WARROOM_LIVE_BEAT_SECONDS,
    )
    return render(request, "deployments/warroom.html", context)


@login_required
@require_GET
def board(request, pk):
    """The whole board as a fragment: what a reconnecting or polling screen fetches."""
    deployment = get_visible_deployment_or_404(request.user, pk, related=("runbook_version",))
    context = board_module.board_context(deployment.pk, deployment=deployment)
    response = render(request, "deployments/warroom.html#board", context)
    response["X-Warroom-Seq"] = str(context["seq"])
    response["X-Warroom-Epoch"] = context["epoch"]
    return response


# --- the TV and the phone ------------------------------------------------------------


def _live_settings() -> dict:
    return {"poll_seconds": settings.WARROOM_POLL_SECONDS, "beat_seconds": settings.WARROOM_LIVE_BEAT_SECONDS}


def _fragment(request, template: str, context: dict) -> HttpResponse:
    """One screen's whole fragment, with where the live numbers were when it was rendered."""
    response = render(request, template, context)
    response["X-Warroom-Seq"] = str(context["seq"])
    response["X-Warroom-Epoch"] = context["epoch"]
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def tv(request, pk):
    """The war room for a wall screen: one screen, no scrolling, no controls. It follows the
    deployment by re-fetching ``tv_board`` whenever a push arrives (warroom.js)."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    context = screens.tv_context(deployment.pk)
    context.update(_live_settings())
    return render(request, "deployments/tv.html", context)


TV_CACHE_SECONDS = 120


@login_required
@require_GET
def tv_board(request, pk):
    """The TV's one fragment. It is the same for every viewer, so it is rendered once per push
    (cached under the push's epoch and number, shared by every web process through Redis)
    however many TVs re-fetch it; the permission check still runs for each request."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    epoch, seq = live.current_position(deployment.pk)
    key = f"warroom:tv:{deployment.pk}:{epoch}:{seq}"
    cached = bool(epoch)  # no epoch: Redis is down, render from PostgreSQL like the board
    html = None
    if cached:
        try:
            html = cache.get(key)
        except Exception:
            cached = False
    if html is None:
        # Rendered without the request: nothing in it depends on who looks.
        html = render_to_string("deployments/tv.html#tv", screens.tv_context(deployment.pk))
        if cached:
            try:
                cache.set(key, html, TV_CACHE_SECONDS)
            except Exception:  # noqa: S110 (a cache that cannot store only costs a render)
                pass
    response = HttpResponse(html)
    response["X-Warroom-Seq"] = str(seq)
    response["X-Warroom-Epoch"] = epoch
    response["Cache-Control"] = "no-store"
    return response


def _me_context(request, deployment) -> dict:
    context = board_module.board_context(deployment.pk)
    access = access_for(request.user, deployment)
    context.update(access=access, work=screens.my_work(context, request.user, access))
    context["clock"] = screens.clock(context["d"], context["board"].steps, context["board"].now)
    return context


@login_required
@require_GET
def me(request, pk):
    """The phone view: what waits for this person first, one tap each; the rest below."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    context = _me_context(request, deployment)
    context.update(_live_settings())
    return render(request, "deployments/me.html", context)


@login_required
@require_GET
def me_board(request, pk):
    """The phone view's fragment; ``?part=waiting`` is just what waits for this person, which
    the war room shows on top at phone width (without the step lines it shows itself)."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    context = _me_context(request, deployment)
    if request.GET.get("part") == "waiting":
        context["embedded"] = True
        return _fragment(request, "deployments/me.html#waiting", context)
    return _fragment(request, "deployments/me.html#me", context)


@login_required
@require_POST
def item_update(request, pk, item_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    item = Item.objects.filter(deployment=deployment, pk=item_pk).only("kind").first()
    if item is None:
        raise Http404("No such item in this deployment")
    try:
        revision = int(request.POST["revision"]) if request.POST.get("revision", "") != "" else None
    except ValueError:
        return toast_response("That form is malformed (revision is not a number). Reload the page.", 400)
    kwargs = {"revision": revision}
    if "note" in request.POST:
        kwargs["note"] = request.POST["note"]
    if item.kind == "check":
        kwargs["checked"] = request.POST.get("checked") == "1"
    else:
        if "value" not in request.POST:
            return toast_response("A value is needed.", 400)
        kwargs["value"] = request.POST["value"]
    try:
        services.update_item(item.pk, request.user, deployment_id=deployment.pk, **kwargs)
    except services.StaleChange as exc:
        return fragments_response(board_module.render_item_push(exc.current.pk, step_changed=False), toast=str(exc))
    except services.InvalidChange as exc:
        return toast_response(str(exc), 400)
    except PermissionDenied as exc:
        return toast_response(str(exc), 403)
    except ObjectDoesNotExist:
        raise Http404("No such item") from None
    return done_response()


@login_required
@require_http_methods(["GET", "POST"])
def change_state(request, pk):
    """POST moves the deployment. GET is the lead's "complete" form: what is still open now,
    and, if anything is, the override's reason box and confirmation."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    if request.method == "GET":
        if not access_for(request.user, deployment).is_lead:
            return toast_response("Only the deployment lead may change the deployment's state.", 403)
        context = {"d": deployment, "open_work": services.open_work(deployment)}
        return render(request, "deployments/warroom.html#complete-form", context)
    reason = request.POST.get("reason") or request.headers.get("HX-Prompt", "")
    new_state = request.POST.get("state", "")
    override_reason = request.POST.get("override_reason", "")
    if override_reason.strip() and request.POST.get("confirm_override") != "1":
        return toast_response("Confirm the override: tick “Complete with this work open”.", 400)
    return service_response(
        lambda: services.change_state(deployment.pk, request.user, new_state, reason=reason, override_reason=override_reason)
    )


@login_required
@require_POST
def reanchor(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    form = ReanchorForm(request.POST)
    if not form.is_valid():
        return toast_response("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), 400)
    t0, reason = form.cleaned_data["t0"], form.cleaned_data["reason"]
    confirm_due = request.POST.get("confirm_due") == "1"
    asked = []

    def call():
        try:
            services.reanchor_t0(deployment.pk, request.user, t0, reason=reason, confirm_due=confirm_due)
        except services.NeedsConfirmation as exc:
            asked.extend(exc.consequences)

    response = service_response(call)
    if asked:
        # Not a refusal: the lead is asked, with the list; the same POST with the tick proceeds.
        context = {"d": deployment, "new_t0": t0, "posted": request.POST, "consequences": asked}
        return render(request, "deployments/warroom.html#reanchor-confirm", context)
    return response


@login_required
def people(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    access = access_for(request.user, deployment)
    role_names = list(deployment.roles.values_list("name", flat=True))
    participant_form = ParticipantForm(role_names=role_names, prefix="p")
    contact_form = ContactForm(role_names=role_names, prefix="c")
    status = 200
    if request.method == "POST":
        if not access.is_lead:
            return toast_response("Only the deployment lead may manage people.", 403)
        try:
            if "remove" in request.POST:
                remove_id = parse_id(request.POST["remove"])
                user = deployment.participants.filter(user_id=remove_id).first() if remove_id else None
                if user is None:
                    raise services.InvalidChange("That person is not part of this deployment.")
                services.remove_participant(deployment, request.user, user.user)
                messages.success(request, f"{user.user} removed.")
                return redirect("deployments:people", pk)
            if "add_contact" in request.POST:
                contact_form = ContactForm(request.POST, role_names=role_names, prefix="c")
                if contact_form.is_valid():
                    data = contact_form.cleaned_data
                    services.add_contact(
                        deployment,
                        request.user,
                        role_name=data["role"] or None,
                        level=data["level"],
                        name=data["name"],
                        phone=data["phone"],
                        email=data["email"],
                    )
                    messages.success(request, f"Contact {data['name']} added.")
                    return redirect("deployments:people", pk)
            else:
                participant_form = ParticipantForm(request.POST, role_names=role_names, prefix="p")
                if participant_form.is_valid():
                    data = participant_form.cleaned_data
                    services.set_participant(
                        deployment, request.user, data["username"], role_names=data["roles"], is_lead=data["is_lead"]
                    )
                    messages.success(request, f"{data['username']} is now in this deployment.")
                    return redirect("deployments:people", pk)
        except services.InvalidChange as exc:
            messages.error(request, str(exc))
        status = 400
    context = {
        "d": deployment,
        "access": access,
        "participants": deployment.participants.select_related("user").prefetch_related("roles"),
        "contacts": deployment.contacts.select_related("role"),
        "participant_form": participant_form,
        "contact_form": contact_form,
    }
    return render(request, "deployments/people.html", context, status=status)


def _event_log(request, pk):
    """What the page and both exports share: who may read the log (participants, asked in
    deployments.permissions), the filter from the querystring and the events it selects
    (None while the filter is invalid)."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    steps, places = event_log.step_places(deployment)
    form = event_log.EventLogFilter(request.GET, deployment=deployment, steps=steps)
    selected = event_log.filtered_events(deployment, form, places) if form.is_valid() else None
    return deployment, steps, places, form, selected


@login_required
@require_GET
def events(request, pk):
    """The event log as an auditor reads it: filtered, paged, each line in words, and
    whether the hash chain still holds."""
    deployment, steps, places, form, selected = _event_log(request, pk)
    context = {"d": deployment, "form": form, "chain": verify_chain(deployment.pk), "page_size": event_log.PAGE_SIZE}
    if selected is None:
        return render(request, "deployments/events.html", context, status=400)
    paginator = Paginator(selected, event_log.PAGE_SIZE)
    page = paginator.get_page(form.cleaned_data.get("page") or 1)
    context.update(
        page=page,
        lines=event_log.log_lines(page.object_list, deployment=deployment, steps=steps, places=places),
        query=form.as_query(),
        prev_query=form.as_query(page=page.previous_page_number()) if page.has_previous() else "",
        next_query=form.as_query(page=page.next_page_number()) if page.has_next() else "",
        last_query=form.as_query(page=paginator.num_pages),
    )
    if not context["chain"].ok:
        context["broken_page"] = (context["chain"].broken_at - 1) // event_log.PAGE_SIZE + 1
    return render(request, "deployments/events.html", context)


@login_required
@require_GET
def events_export(request, pk, fmt):
    """Exactly the events the page shows for the same querystring (every page of them)."""
    deployment, steps, places, form, selected = _event_log(request, pk)
    if selected is None:
        return HttpResponseBadRequest(
            "The filter is not valid: " + " ".join(form.problems), content_type="text/plain; charset=utf-8"
        )
    lines = event_log.log_lines(selected.iterator(chunk_size=2000), deployment=deployment, steps=steps, places=places)
    records = [event_log.export_record(line) for line in lines]
    filename = f"deployment-{deployment.pk}-events.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(event_log.csv_lines(records), content_type="text/csv; charset=utf-8")
    else:
        chain = verify_chain(deployment.pk)
        body = {
            "deployment": {"id": deployment.pk, "name": deployment.name, "timezone": deployment.timezone_name},
            "filter": {name: form.data.get(name, "") for name in ("actor", "kind", "step", "since", "until")},
            "chain": {"intact": chain.ok, "count": chain.count, "last_hash": chain.last_hash, "problem": chain.problem},
            "count": len(records),
            "events": records,
        }
        response = JsonResponse(body, json_dumps_params={"ensure_ascii": False, "indent": 1})
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
