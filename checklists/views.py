"""Runbook pages: the list, importing, a runbook's versions, a version's structure and its editor.

Reading needs a login; importing and editing need ``services.can_edit_runbooks``.
The editor's posts come from htmx and get back the fragment that changed (a step,
a phase, or all phases), rendered from the partials of ``checklists/version.html``,
the same template that renders the page. Without JavaScript the same forms post
normally and come back to the page. Refusals are a 4xx with a sentence the page
shows as a toast; nothing here answers a bad post with a 500.
"""

from __future__ import annotations

import base64
import json
import re
from functools import wraps
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checklists import hooks, services
from checklists.forms import (
    GateForm,
    ItemForm,
    MoveForm,
    RoleForm,
    RunbookReviewForm,
    RunbookUploadForm,
    TimingForm,
    TitleForm,
    errors_text,
    max_upload_label,
)
from checklists.importing import RunbookImportError, export_markdown, import_runbook
from checklists.models import ItemKind, Runbook, RunbookVersion, TemplateItem, TemplatePhase, TemplateStep
from checklists.recognition import understood_lines
from checklists.review import reviewable

VERSION_TEMPLATE = "checklists/version.html"
TOAST_HEADER_MAX = 300  # a refusal may quote what was typed; the header carries at most this much


def toast_response(message: str, status: int) -> HttpResponse:
    """A 4xx the page shows as a toast (warroom.js listens for ``warroom:toast``)."""
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    short = message if len(message) <= TOAST_HEADER_MAX else message[: TOAST_HEADER_MAX - 1] + "…"
    response["HX-Trigger"] = json.dumps({"warroom:toast": short})
    return response


# --- reading ---------------------------------------------------------------------------------


@login_required
@require_GET
def runbook_list(request):
    services.require_reader(request.user)
    runbooks = Runbook.objects.annotate(version_count=Count("versions")).prefetch_related(
        Prefetch("versions", queryset=RunbookVersion.objects.order_by("-number"))
    )
    return render(request, "checklists/list.html", {"runbooks": runbooks, "can_edit": services.can_edit_runbooks(request.user)})


EDITS_SHOWN = 100  # the newest edits of the runbook's templates, on its page


@login_required
@require_GET
def runbook_detail(request, pk):
    services.require_reader(request.user)
    runbook = get_object_or_404(Runbook, pk=pk)
    versions = (
        runbook.versions.select_related("created_by")
        .annotate(
            phase_count=Count("phases", distinct=True),
            step_count=Count("phases__steps", distinct=True),
            deployment_count=Count("deployments", distinct=True),
        )
        .order_by("-number")
    )
    return render(
        request,
        "checklists/runbook.html",
        {
            "runbook": runbook,
            "versions": versions,
            "can_edit": services.can_edit_runbooks(request.user),
            "edits": list(runbook.edits.all()[:EDITS_SHOWN]),
            "upload_form": RunbookUploadForm(initial={"runbook": runbook.pk}),
            "max_upload": max_upload_label(),
        },
    )


@login_required
@require_GET
def version_detail(request, pk):
    services.require_reader(request.user)
    version = get_object_or_404(RunbookVersion.objects.select_related("runbook", "created_by"), pk=pk)
    return render(request, VERSION_TEMPLATE, _page_context(request, version))


@login_required
@require_GET
def version_export(request, pk):
    services.require_reader(request.user)
    version = get_object_or_404(RunbookVersion.objects.select_related("runbook"), pk=pk)
    filename = f"{slugify(version.runbook.name) or 'runbook'}-v{version.number}.md"
    response = HttpResponse(export_markdown(version), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    return response


# --- importing -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def runbook_import(request):
    """Upload a runbook. With "review first" (ticked by default) nothing is saved yet: the page shows
    what was understood, each gate, approval, role merge, contact, threshold and rollout stage with a
    box, and a second post (``RunbookReviewForm``, the same file) imports it with the boxes left ticked.
    """
    if not services.can_edit_runbooks(request.user):
        raise PermissionDenied("Only runbook editors may import runbooks.")
    reviewed = request.method == "POST" and "source" in request.POST
    problems: list[str] = []  # what went wrong with a reviewed import (its form has no file field to show them on)
    if reviewed:
        review_form = RunbookReviewForm(request.POST)
        form = RunbookUploadForm()
        if not review_form.is_valid():
            problems = [error for errors in review_form.errors.values() for error in errors]
    elif request.method == "POST":
        form = RunbookUploadForm(request.POST, request.FILES)
    else:
        form = RunbookUploadForm(initial={"runbook": request.GET.get("runbook"), "dry_run": True})
    preview = None
    if reviewed and not problems:
        data, filename = review_form.cleaned_data["source"], review_form.cleaned_data["filename"] or "runbook.md"
        target, as_new, dry_run = review_form.cleaned_data["runbook"], review_form.cleaned_data["as_new"], False
        kept = review_form.kept(request.POST.getlist("keep"))
    elif request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data, filename = upload.read(), upload.name
        target, as_new, dry_run = form.cleaned_data["runbook"], form.cleaned_data["as_new"], form.cleaned_data["dry_run"]
        kept = None
    else:
        data = None
    if data is not None:
        try:
            outcome = import_runbook(
                data, filename=filename, user=request.user, runbook=target, dry_run=dry_run, as_new=as_new, kept=kept
            )
        except RunbookImportError as error:
            if reviewed:
                problems.append(str(error))
            else:
                form.add_error("file", str(error))
        else:
            if outcome.version is None:
                preview = outcome.parsed.counts()
                preview.update(
                    found=outcome.parsed.found,
                    understood=understood_lines(outcome.parsed.found),
                    placement=outcome.placement,
                    review=reviewable(outcome.parsed.found),
                    review_form=RunbookReviewForm(
                        initial={
                            "source": base64.b64encode(data).decode("ascii"),
                            "filename": filename,
                            "runbook": target.pk if target else None,
                            "as_new": as_new,
                        }
                    ),
                )
            else:
                version = outcome.version
                counts = outcome.parsed.counts()
                what = "a new runbook" if outcome.created_runbook else f"version {version.number} of “{version.runbook.name}”"
                if outcome.placement and outcome.placement not in ("a new runbook",):
                    what += f" — {outcome.placement}"
                dropped = sum(len(entries) for entries in (version.recognised.get("dropped") or {}).values())
                messages.success(
                    request,
                    f"Imported {filename} as {what}: {counts['phases']} phases, {counts['steps']} steps, "
                    f"{counts['items']} checklist items, {counts['fields']} fields, {counts['choices']} choices, "
                    f"{counts['gates']} go/no-go gates. Understood: "
                    + "; ".join(understood_lines(version.recognised))
                    + (f". Left out as you chose: {dropped}." if dropped else ""),
                )
                return redirect("checklists:version", version.pk)
    status = 400 if form.errors or problems else 200
    context = {"form": form, "preview": preview, "problems": problems, "max_upload": max_upload_label()}
    return render(request, "checklists/import.html", context, status=status)


# --- the structure of a version, for the page and its fragments ---------------------------------


def _prepare_step(step: TemplateStep) -> TemplateStep:
    """Item tree, labels and kinds for the step partial (items and code blocks prefetched or not)."""
    items = list(step.items.all())
    children: dict[int | None, list[TemplateItem]] = {}
    for item in items:
        children.setdefault(item.parent_id, []).append(item)
    for item in items:
        item.kids = children.get(item.pk, [])
        item.plain = _plain(item.text)
        notes, selected = getattr(item, "option_notes", None) or [], getattr(item, "selected", None) or []
        item.option_rows = [
            (option, notes[index] if index < len(notes) else "", option in selected) for index, option in enumerate(item.options)
        ]
    step.roots = children.get(None, [])
    step.item_count = len(items)
    step.offset_label = services.format_offset(step.offset_minutes)
    step.offset_value = step.offset_label
    step.duration_label = services.format_duration(step.duration_min_minutes, step.duration_max_minutes)
    low, high = step.duration_min_minutes, step.duration_max_minutes
    step.duration_value = "" if low is None and high is None else (f"{low}" if low == high else f"{low}-{high}")
    step.code_list = list(step.code_blocks.all())
    return step


def _plain(text: str, limit: int = 80) -> str:
    """Item text without Markdown marks, short enough for a button's accessible name."""
    plain = " ".join(re.sub(r"\*\*|__|`", "", text).split())
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


def _steps_queryset():
    return TemplateStep.objects.select_related("role").prefetch_related("items", "code_blocks").order_by("position", "id")


def _phases(version: RunbookVersion) -> list[TemplatePhase]:
    phases = list(version.phases.prefetch_related(Prefetch("steps", queryset=_steps_queryset())).order_by("position", "id"))
    for index, phase in enumerate(phases):
        phase.step_list = [_prepare_step(step) for step in phase.steps.all()]
        _mark_ends(phase, first_phase=index == 0, last_phase=index == len(phases) - 1)
    return phases


def _mark_ends(phase: TemplatePhase, *, first_phase: bool, last_phase: bool) -> None:
    """Which move buttons lead nowhere: steps cross into neighbouring phases, so only the ends of the runbook."""
    phase.is_first, phase.is_last = first_phase, last_phase
    for index, step in enumerate(phase.step_list):
        step.is_first = first_phase and index == 0
        step.is_last = last_phase and index == len(phase.step_list) - 1


def _phase(phase_id: int) -> TemplatePhase:
    phase = TemplatePhase.objects.select_related("version").get(pk=phase_id)
    phase.step_list = [_prepare_step(step) for step in _steps_queryset().filter(phase=phase)]
    siblings = list(
        TemplatePhase.objects.filter(version_id=phase.version_id).order_by("position", "id").values_list("pk", flat=True)
    )
    _mark_ends(phase, first_phase=siblings[0] == phase.pk, last_phase=siblings[-1] == phase.pk)
    return phase


def _step(step_id: int) -> TemplateStep:
    step = _prepare_step(_steps_queryset().select_related("phase__version").get(pk=step_id))
    ids = list(
        TemplateStep.objects.filter(phase__version_id=step.phase.version_id)
        .order_by("phase__position", "phase_id", "position", "id")
        .values_list("pk", flat=True)
    )
    step.is_first, step.is_last = ids[0] == step.pk, ids[-1] == step.pk
    return step


def _counts(version: RunbookVersion) -> dict:
    by_kind = dict(
        TemplateItem.objects.filter(step__phase__version=version).values_list("kind").annotate(n=Count("id")).order_by()
    )
    return {
        "phases": version.phases.count(),
        "steps": TemplateStep.objects.filter(phase__version=version).count(),
        "items": by_kind.get(ItemKind.CHECK, 0),
        "fields": by_kind.get(ItemKind.FIELD, 0),
        "choices": by_kind.get(ItemKind.CHOICE, 0),
        "gates": by_kind.get(ItemKind.GATE, 0),
    }


def _editor_context(request, version: RunbookVersion) -> dict:
    return {
        "version": version,
        "can_edit": services.can_edit_runbooks(request.user),
        "roles": list(version.roles.all()),
        "kinds": ItemKind.choices,
        "counts": _counts(version),
    }


def _page_context(request, version: RunbookVersion) -> dict:
    context = _editor_context(request, version)
    context.update(
        phases=_phases(version),
        timeline=list(version.timeline.select_related("role")),
        deployment_count=version.deployments.count(),
        other_versions=list(version.runbook.versions.exclude(pk=version.pk).order_by("-number").values("pk", "number")),
        sections=hooks.version_sections(request, version),
    )
    for entry in context["timeline"]:
        entry.offset_label = services.format_offset(entry.offset_minutes)
        entry.duration_label = services.format_duration(entry.duration_min_minutes, entry.duration_max_minutes)
    return context


# --- editing -----------------------------------------------------------------------------------


def _fragment(request, version: RunbookVersion, partial: str, status_message: str, **context) -> HttpResponse:
    """One partial of the version page, plus (out of band) the summary and the status line."""
    full = {**_editor_context(request, version), **context, "status_message": status_message}
    html = render_to_string(f"{VERSION_TEMPLATE}#{partial}", full, request=request)
    for extra in ("summary", "status"):
        html += render_to_string(f"{VERSION_TEMPLATE}#{extra}", {**full, "oob": True}, request=request)
    return HttpResponse(html)


def _step_fragment(request, step_id: int, message: str, *, from_editor: bool = True) -> HttpResponse:
    """The step; its editor stays open when the change was made in it (warroom.js keeps any other open one open)."""
    step = _step(step_id)
    return _fragment(request, step.phase.version, "step", message, step=step, open_step=from_editor and step.pk)


def _phase_fragment(request, phase_id: int, message: str, *, focus_phase: bool = False) -> HttpResponse:
    phase = _phase(phase_id)
    return _fragment(request, phase.version, "phase", message, phase=phase, focus_phase=focus_phase and phase.pk)


def _phases_fragment(request, version_id: int, message: str, **context) -> HttpResponse:
    version = RunbookVersion.objects.get(pk=version_id)
    return _fragment(request, version, "phases", message, phases=_phases(version), **context)


def editor_post(view):
    """Login, POST, the editor permission, and the answer to a refused edit (a toast)."""

    @login_required
    @require_POST
    @wraps(view)
    def wrapped(request, pk):
        if not services.can_edit_runbooks(request.user):
            return toast_response("Only runbook editors may change runbook templates.", 403)
        try:
            return view(request, pk)
        except services.TemplateEditError as error:
            return toast_response(str(error), 400)
        except PermissionDenied as error:
            return toast_response(str(error) or "You may not change this runbook.", 403)
        except ObjectDoesNotExist:
            return toast_response("That part of the runbook no longer exists: reload the page.", 404)

    return wrapped


def _valid(form):
    if not form.is_valid():
        raise services.TemplateEditError(f"That form is malformed ({errors_text(form)}). Reload the page.")
    return form.cleaned_data


@login_required
@require_GET
def step_editor(request, pk):
    """The editing forms of one step, fetched when its "Edit step" panel is first opened."""
    if not services.can_edit_runbooks(request.user):
        return toast_response("Only runbook editors may change runbook templates.", 403)
    try:
        step = _step(pk)
    except TemplateStep.DoesNotExist:
        return toast_response("That step no longer exists: reload the page.", 404)
    context = {**_editor_context(request, step.phase.version), "step": step}
    return HttpResponse(render_to_string(f"{VERSION_TEMPLATE}#step_editor", context, request=request))


@editor_post
def version_rename(request, pk):
    data = _valid(TitleForm(request.POST))
    version = services.rename_version(request.user, pk, data["title"])
    return _fragment(request, version, "version_head", f"Version renamed to “{version.title}”.")


@editor_post
def phase_add(request, pk):
    data = _valid(TitleForm(request.POST))
    phase = services.add_phase(request.user, pk, data["title"])
    return _phases_fragment(request, pk, f"Phase “{phase.title}” added at the end.", focus_phase=phase.pk)


@editor_post
def phase_rename(request, pk):
    data = _valid(TitleForm(request.POST))
    phase = services.rename_phase(request.user, pk, data["title"])
    return _phase_fragment(request, pk, f"Phase renamed to “{phase.title}”.")


@editor_post
def phase_move(request, pk):
    data = _valid(MoveForm(request.POST))
    phase = services.move_phase(request.user, pk, data["direction"])
    return _phases_fragment(request, phase.version_id, f"Phase “{phase.title}” moved {data['direction']}.")


@editor_post
def phase_remove(request, pk):
    version = services.remove_phase(request.user, pk)
    return _phases_fragment(request, version.pk, "Phase removed.")


@editor_post
def step_add(request, pk):
    data = _valid(TitleForm(request.POST))
    step = services.add_step(request.user, pk, data["title"])
    phase = _phase(pk)
    return _fragment(request, phase.version, "phase", f"Step “{step.title}” added.", phase=phase, open_step=step.pk)


@editor_post
def step_rename(request, pk):
    data = _valid(TitleForm(request.POST))
    step = services.rename_step(request.user, pk, data["title"])
    return _step_fragment(request, pk, f"Step renamed to “{step.title}”.")


@editor_post
def step_move(request, pk):
    data = _valid(MoveForm(request.POST))
    old_phase_id = TemplateStep.objects.values_list("phase_id", flat=True).get(pk=pk)
    step, changed_phase = services.move_step(request.user, pk, data["direction"])
    if changed_phase:
        version_id = TemplatePhase.objects.values_list("version_id", flat=True).get(pk=old_phase_id)
        neighbour = "previous" if data["direction"] == "up" else "next"
        response = _phases_fragment(request, version_id, f"Step “{step.title}” moved into the {neighbour} phase.")
        response["HX-Retarget"] = "#rb-phases"
        response["HX-Reswap"] = "outerHTML"
        return response
    return _phase_fragment(request, old_phase_id, f"Step “{step.title}” moved {data['direction']}.")


@editor_post
def step_remove(request, pk):
    phase = services.remove_step(request.user, pk)
    return _phase_fragment(request, phase.pk, "Step removed.", focus_phase=True)


@editor_post
def step_role(request, pk):
    data = _valid(RoleForm(request.POST))
    step = services.set_step_role(request.user, pk, role_id=data["role"], new_role=data["new_role"])
    # A new role shows in the summary at once and in every step editor opened from now on.
    return _step_fragment(request, pk, f"Role set to {step.role.name}." if step.role else "Role cleared.")


@editor_post
def step_timing(request, pk):
    data = _valid(TimingForm(request.POST))
    step = services.set_step_timing(request.user, pk, offset=data["offset"], duration=data["duration"])
    offset = services.format_offset(step.offset_minutes) or "none"
    duration = services.format_duration(step.duration_min_minutes, step.duration_max_minutes) or "none"
    return _step_fragment(request, pk, f"Timing saved: start {offset}, duration {duration}.")


@editor_post
def step_gate(request, pk):
    data = _valid(GateForm(request.POST))
    step, added = services.set_step_gate(request.user, pk, data["is_gate"])
    if added is not None:
        message = "Step marked as a go/no-go gate; a GO / NO-GO decision item was added."
    else:
        message = "Step marked as a go/no-go gate." if step.is_gate else "Step is no longer a gate."
    return _step_fragment(request, pk, message)


@editor_post
def item_add(request, pk):
    data = _valid(ItemForm(request.POST))
    item = services.add_item(request.user, pk, kind=data["kind"], text=data["text"], options=data["options"])
    return _step_fragment(request, pk, f"{item.get_kind_display()} “{item.text}” added.")


@editor_post
def item_move(request, pk):
    data = _valid(MoveForm(request.POST))
    item = services.move_item(request.user, pk, data["direction"])
    return _step_fragment(request, item.step_id, f"Item moved {data['direction']}.", from_editor=False)


@editor_post
def item_remove(request, pk):
    step = services.remove_item(request.user, pk)
    return _step_fragment(request, step.pk, "Item removed.", from_editor=False)
