"""The rollouts app's parts of the war room, registered in ``deployments.panels``
(rollouts/apps.py): the rollout panel (stages, metric gates, charts) and, under each step
with an action, its run button and its last runs. One loader each, rendered for the page
and for pushes from the same partials of ``rollouts/panel.html``. The log lines a run
streams are pushed by the runner (``rollouts.runner.push_log_lines``).
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from deployments.board import render_events
from deployments.models import Deployment
from rollouts import controller
from rollouts.charts import gate_chart, sparkline
from rollouts.models import DEMO_SOURCE, RolloutPlan, TaskRun

TEMPLATE = "rollouts/panel.html"
RUNS_PER_STEP = 3


def runs_by_step(deployment_id: int) -> dict[int, list[TaskRun]]:
    """The last runs of each step (the ``runs`` panel of the STEP slot)."""
    grouped: dict[int, list[TaskRun]] = {}
    for run in TaskRun.objects.filter(deployment_id=deployment_id).select_related("target", "started_by").order_by("-created_at"):
        bucket = grouped.setdefault(run.step_id, [])
        if len(bucket) < RUNS_PER_STEP:
            bucket.append(run)
    return grouped


def render_run_push(run_id: int) -> list[str]:
    run = TaskRun.objects.select_related("step", "deployment").get(pk=run_id)
    step = run.step
    step.parts = {"runs": runs_by_step(run.deployment_id).get(step.pk, [])}
    context = {"step": step, "d": run.deployment, "oob": True}
    return [render_to_string(f"{TEMPLATE}#runs", context), render_events(run.deployment)]


def load_rollout(deployment_id: int, board=None) -> dict | None:
    plan = RolloutPlan.objects.filter(deployment_id=deployment_id).select_related("step__role").first()
    if plan is None:
        return None
    stages = list(plan.stages.all())
    gates = list(plan.gates.select_related("source_def"))
    readings = list(controller.recent_readings(plan))
    latest = {}
    for reading in readings:
        latest[reading.gate_id] = reading
    return {
        "plan": plan,
        "stages": stages,
        "gates": [{"gate": g, "latest": latest.get(g.pk), "chart": gate_chart(g, readings)} for g in gates],
        "rollback_phase": controller.rollback_phase(deployment_id) if plan.state == "aborted" else None,
        # The demo's buttons exist only where the demo's routes do (WARROOM_DEMO).
        "is_demo": settings.WARROOM_DEMO and any(g.source_def is not None and g.source_def.name == DEMO_SOURCE for g in gates),
    }


def render_rollout_push(deployment_id: int) -> list[str]:
    deployment = Deployment.objects.get(pk=deployment_id)
    context = {"d": deployment, "oob": True, "rollout": load_rollout(deployment_id)}
    return [render_to_string(f"{TEMPLATE}#rollout", context), render_events(deployment)]


def attach_sparklines(rollout: dict | None) -> None:
    """What only the TV shows of the rollout panel: each gate's last hour as a sparkline."""
    if not rollout:
        return
    readings = list(controller.recent_readings(rollout["plan"], minutes=60))
    for g in rollout["gates"]:
        g["spark"] = sparkline(g["gate"], readings)
