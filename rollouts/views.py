import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments.models import Step
from deployments.permissions import access_for, get_visible_deployment_or_404
from deployments.services import InvalidChange
from deployments.views import service_response, toast_response
from rollouts import controller, drafting, runs
from rollouts.models import MetricGate, MetricSource, RolloutPlan, Router, TaskLogLine, TaskRun


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
def rollout_plan(request, pk):
    """The lead edits the plan as JSON (the same format as the runbook's warroom block)."""
    deployment = get_visible_deployment_or_404(request.user, pk)
    access = access_for(request.user, deployment)
    plan = RolloutPlan.objects.filter(deployment=deployment).first()
    text = request.POST.get("plan", "") if request.method == "POST" else json.dumps(plan_spec(plan), indent=2) if plan else ""
    status = 200
    if request.method == "POST":
        if not access.is_lead:
            return toast_response("Only the lead edits the rollout plan.", 403)
        try:
            spec = json.loads(text)
            controller.define_plan(deployment, spec, step=plan.step if plan else None, actor=request.user)
        except ValueError as exc:
            messages.error(request, f"Not valid JSON: {exc}")
            status = 400
        except InvalidChange as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            messages.success(request, "Rollout plan saved.")
            return redirect("deployments:warroom", pk)
    in_plan = {name.casefold() for name in plan.gates.values_list("name", flat=True)} if plan else set()
    suggested = [
        {"line": gate.pop("line"), "name": gate["name"], "json": json.dumps(gate, ensure_ascii=False)}
        for gate in drafting.suggested_gates(deployment.runbook_version.recognised or {})
        if gate["name"].casefold() not in in_plan
    ]
    context = {
        "d": deployment,
        "access": access,
        "text": text,
        "routers": Router.objects.all(),
        "sources": MetricSource.objects.all(),
        "suggested": suggested,
    }
    return render(request, "rollouts/plan.html", context, status=status)


def plan_spec(plan) -> dict:
    return {
        "strategy": plan.strategy,
        "router": plan.router_def.name if plan.router_def else "manual",
        "sample": plan.sample_seconds,
        "stages": [{"weight": s.weight, "hold": s.hold_seconds} for s in plan.stages.all()],
        "gates": [
            {
                "name": g.name,
                "source": g.source_def.name if g.source_def else "manual",
                **g.source_config,
                "comparator": g.comparator,
                "threshold": g.threshold,
                "unit": g.unit,
                "consecutive_bad": g.consecutive_bad,
            }
            for g in plan.gates.all()
        ],
    }
