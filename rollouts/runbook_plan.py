"""The "Rollout plan" section of a runbook version's page (``checklists.hooks.version_section``).

It shows the step that carries the version's rollout and its plan, or — when no step does
but the import recognised rollout stages — the draft ``drafting.draft_plan`` makes of them,
naming the lines it was read from. Runbook editors change it with ``forms.RolloutPlanEditor``;
the change itself is ``checklists.services.set_rollout`` / ``remove_rollout``.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from checklists import services
from checklists.models import RunbookVersion, StepAction, TemplateStep
from rollouts import controller, drafting
from rollouts.forms import RolloutPlanEditor, readable

SECTION_ID = "rb-rollout"
TEMPLATE = "rollouts/runbook_plan.html"


def rollout_step(version: RunbookVersion) -> TemplateStep | None:
    return (
        TemplateStep.objects.filter(phase__version=version, action=StepAction.ROLLOUT)
        .select_related("phase")
        .order_by("phase__position", "position")
        .first()
    )


def _step_choices(version: RunbookVersion) -> list[tuple[int, str]]:
    steps = TemplateStep.objects.filter(phase__version=version).select_related("phase").order_by("phase__position", "position")
    return [(step.pk, f"{step.phase.title} › {step.title}") for step in steps]


def _draft(version: RunbookVersion) -> tuple[dict, int | None, list[int]] | None:
    """(spec, the step of its first stage, source lines), or None when the runbook offers none."""
    recognised = version.recognised or {}
    drafted = drafting.draft_plan(recognised) if recognised.get("placed") else None
    if drafted is None or controller.validate_plan(drafted[0]):
        return None  # as setup_from_runbook: a stage list that does not make a rising plan is not offered
    spec, place = drafted
    step = None
    if place is not None:
        step = TemplateStep.objects.filter(phase__version=version, phase__position=place[0], position=place[1]).first()
    return spec, step.pk if step else None, drafting.draft_lines(recognised)


def editor_context(request, version: RunbookVersion, data=None, *, status_message: str = "") -> dict:
    step = rollout_step(version)
    draft = None if step else _draft(version)
    if step:
        spec, selected = step.action_config, step.pk
    elif draft:
        spec, selected = draft[0], draft[1]
    else:
        spec, selected = None, None
    suggested = drafting.suggested_missing_from(spec, version.recognised)
    editor = RolloutPlanEditor(
        data,
        spec=spec,
        steps=_step_choices(version),
        step=selected,
        suggested=suggested,
    )
    return {
        "version": version,
        "can_edit": services.can_edit_runbooks(request.user),
        "rollout_step": step,
        "plan": spec if step else None,
        "readable_plan": readable(spec) if step else None,
        "draft_lines": draft[2] if draft else [],
        "editor": editor,
        "suggested": suggested,
        "status_message": status_message,
        "section_id": SECTION_ID,
    }


def render_section(request, context: dict) -> str:
    return render_to_string(f"{TEMPLATE}#section", context, request=request)


def version_section(request, version: RunbookVersion):
    return "Rollout plan", SECTION_ID, render_section(request, editor_context(request, version))
