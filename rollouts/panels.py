"""War-room rendering of task runs: the step's run list, and streamed log batches."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import escape

from deployments import live
from deployments.board import render_events
from rollouts.models import DEMO_SOURCE, TaskRun

TEMPLATE = "deployments/warroom.html"
RUNS_PER_STEP = 3


def runs_by_step(deployment_id: int) -> dict[int, list[TaskRun]]:
    grouped: dict[int, list[TaskRun]] = {}
    for run in TaskRun.objects.filter(deployment_id=deployment_id).select_related("target", "started_by").order_by("-created_at"):
        bucket = grouped.setdefault(run.step_id, [])
        if len(bucket) < RUNS_PER_STEP:
            bucket.append(run)
    return grouped


def render_run_push(run_id: int) -> list[str]:
    run = TaskRun.objects.select_related("step", "deployment").get(pk=run_id)
    step = run.step
    step.run_list = runs_by_step(run.deployment_id).get(step.pk, [])
    context = {"step": step, "d": run.deployment, "oob": True}
    return [render_to_string(f"{TEMPLATE}#runs", context), render_events(run.deployment)]


def push_log_lines(run: TaskRun, first_seq: int, lines: list[str]) -> None:
    """Append a batch of log lines on every screen (the page keeps a bounded tail)."""
    text = escape("\n".join(lines) + "\n")
    fragment = f'<pre hx-swap-oob="beforeend:#run-{run.pk}-log" data-first="{first_seq}" data-count="{len(lines)}">{text}</pre>'
    live.publish(run.deployment_id, [fragment])


def load_rollout(deployment_id: int) -> dict | None:
    from rollouts.charts import gate_chart
    from rollouts.controller import recent_readings, rollback_phase
    from rollouts.models import RolloutPlan

    plan = RolloutPlan.objects.filter(deployment_id=deployment_id).select_related("step__role").first()
    if plan is None:
        return None
    stages = list(plan.stages.all())
    gates = list(plan.gates.select_related("source_def"))
    readings = list(recent_readings(plan))
    latest = {}
    for reading in readings:
        latest[reading.gate_id] = reading
    return {
        "plan": plan,
        "stages": stages,
        "gates": [{"gate": g, "latest": latest.get(g.pk), "chart": gate_chart(g, readings)} for g in gates],
        "rollback_phase": rollback_phase(deployment_id) if plan.state == "aborted" else None,
        # The demo's buttons exist only where the demo's routes do (WARROOM_DEMO).
        "is_demo": settings.WARROOM_DEMO and any(g.source_def is not None and g.source_def.name == DEMO_SOURCE for g in gates),
    }


def render_rollout_push(deployment_id: int) -> list[str]:
    from deployments.models import Deployment

    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "rollout": load_rollout(deployment_id)}
    return [render_to_string(f"{TEMPLATE}#rollout", context), render_events(deployment)]
