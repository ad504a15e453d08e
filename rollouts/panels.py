"""War-room rendering of task runs: the step's run list, and streamed log batches."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.html import escape

from deployments import live
from deployments.board import render_events
from rollouts.models import TaskRun

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
