from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from checklists import services as checklist_services
from checklists.importing import action_block_text
from checklists.models import RunbookVersion, StepAction
from deployments.models import Step
from deployments.permissions import access_for, get_visible_deployment_or_404
from deployments.services import InvalidChange
from deployments.views import service_response, toast_response
from rollouts import controller, drafting, runbook_plan, runs
from rollouts.forms import RolloutPlanEditor, readable
from rollouts.models import MetricGate, RolloutPlan, RolloutState, TaskLogLine, TaskRun


@login_required
@require_POST
def start(request, pk, step_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    if not Step.objects.filter(deployment=deployment, pk=step_pk).exists():
        raise Http404("No such step")
    target = request.POST.get("target")
    if target is not None and not target.isdigit():
        return toast_response("Malformed target id.", 400)
    return service_response(lambda: runs.start_run(step_pk, request.user, target_id=int(target) if target else None))


@login_required
@require_POST
def cancel(request, pk, run_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    if not TaskRun.objects.filter(deployment=deployment, pk=run_pk).exists():
        raise Http404("No such run")
    return service_response(lambda: runs.cancel_run(run_pk, request.user))


@login_required
@require_GET
def log_download(request, pk, run_pk):
    """The whole stored log (masked when written), streamed: it may be large."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    run = TaskRun.objects.filter(deployment=deployment, pk=run_pk).first()
    if run is None:
        raise Http404("No such run")
    lines = TaskLogLine.objects.filter(run=run).order_by("seq").values_list("text", flat=True).iterator(chunk_size=5000)
    response = StreamingHttpResponse((line + "\n" for line in lines), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-{run.action}.log"'
    return response


# --- rollouts ------------------------------------------------------------------------------


@login_required
@require_POST
def rollout_action(request, pk, verb):

    deployment = get_visible_deployment_or_404(request.user, pk)
    plan = RolloutPlan.objects.filter(deployment=deployment).first()
    if plan is None:
        raise Http404("This deployment has no rollout plan")
    reason = request.POST.get("reason") or request.headers.get("HX-Prompt", "")
    calls = {
        "start": lambda: controller.start_rollout(plan.pk, request.user),
        "confirm": lambda: controller.confirm_weight(plan.pk, request.user),
        "pause": lambda: controller.pause_rollout(plan.pk, request.user, reason=reason),
        "resume": lambda: controller.resume_rollout(plan.pk, request.user, reason=reason),
        "promote": lambda: controller.promote_rollout(plan.pk, request.user, reason=reason),
        "abort": lambda: controller.abort_rollout(plan.pk, request.user, reason=reason),
    }
    if verb not in calls:
        raise Http404("Unknown rollout action")
    return service_response(calls[verb])


@login_required
@require_POST
def rollout_reading(request, pk, gate_pk):

    deployment = get_visible_deployment_or_404(request.user, pk)
    if not MetricGate.objects.filter(plan__deployment=deployment, pk=gate_pk).exists():
        raise Http404("No such gate")
    try:
        value = float(request.POST.get("value", "").replace(",", "."))
    except ValueError:
        return toast_response("The reading must be a number.", 400)
    return service_response(
        lambda: controller.enter_reading(gate_pk, request.user, value=value, note=request.POST.get("note", ""))
    )


@login_required
@require_http_methods(["GET", "POST"])
def rollout_plan(request, pk):
    """The lead edits the plan with a form; everyone else reads it. Either way, the plan is
    also shown as the ``warroom`` block a runbook carries it in."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    access = access_for(request.user, deployment)
    plan = RolloutPlan.objects.filter(deployment=deployment).select_related("step").first()
    spec = controller.plan_spec(plan) if plan else None
    editable = access.is_lead and not deployment.is_finished and (plan is None or plan.state == RolloutState.DRAFT)
    if request.method == "POST" and not access.is_lead:
        return toast_response("Only the lead edits the rollout plan.", 403)
    suggested = drafting.suggested_missing_from(spec, deployment.runbook_version.recognised)
    editor = RolloutPlanEditor(
        request.POST if request.method == "POST" else None,
        spec=spec,
        suggested=suggested,
    )
    status = 200
    if request.method == "POST" and not editor.row_change:
        if editor.is_valid():
            try:
                controller.define_plan(deployment, editor.spec, step=plan.step if plan else None, actor=request.user)
            except InvalidChange as exc:  # started or finished meanwhile: said on the form, nothing lost
                editor.problems.append(str(exc))
            else:
                messages.success(request, "Rollout plan saved.")
                return redirect("deployments:warroom", pk)
        status = 400
    context = {
        "d": deployment,
        "access": access,
        "plan": plan,
        "editable": editable,
        "editor": editor,
        "suggested": suggested,
        "spec": readable(spec),
        "warroom_block": action_block_text(StepAction.ROLLOUT, spec) if spec else "",
    }
    return render(request, "rollouts/plan.html", context, status=status)


# --- the rollout plan of a runbook version (the runbook editor) ------------------------------


def _runbook_plan_answer(request, context: dict, status: int = 200) -> HttpResponse:
    """The section alone for htmx (the version page swaps it in place), else its own page."""
    if request.headers.get("HX-Request"):
        return HttpResponse(runbook_plan.render_section(request, context), status=status)
    return render(request, runbook_plan.TEMPLATE, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def runbook_rollout(request, pk):
    """A runbook version's rollout plan: readers see it, runbook editors change it.

    The version page shows the same section; this page is where its form lands without
    JavaScript (adding a row, an error) and where the section can be linked to.
    """
    checklist_services.require_reader(request.user)
    version = get_object_or_404(RunbookVersion.objects.select_related("runbook"), pk=pk)
    if request.method == "GET":
        return _runbook_plan_answer(request, runbook_plan.editor_context(request, version))
    if not checklist_services.can_edit_runbooks(request.user):
        raise PermissionDenied("Only runbook editors may change a runbook's rollout plan.")
    try:
        if "remove_plan" in request.POST:
            checklist_services.remove_rollout(request.user, version.pk)
            message = "Rollout plan removed: no step of this version moves traffic."
        else:
            context = runbook_plan.editor_context(request, version, request.POST)
            editor = context["editor"]
            if editor.row_change:
                return _runbook_plan_answer(request, context)
            if not editor.is_valid():
                return _runbook_plan_answer(request, context, 400)
            step = checklist_services.set_rollout(request.user, version.pk, editor.step_id, editor.spec)
            message = f"Rollout plan saved on step “{step.title}”."
    except checklist_services.TemplateEditError as error:
        context = runbook_plan.editor_context(request, version, request.POST)
        context["editor"].problems.append(str(error))
        return _runbook_plan_answer(request, context, 400)
    if request.headers.get("HX-Request"):
        return _runbook_plan_answer(request, runbook_plan.editor_context(request, version, status_message=message))
    messages.success(request, message)
    return redirect(reverse("checklists:version", args=[version.pk]) + f"#{runbook_plan.SECTION_ID}")
