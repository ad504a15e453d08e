"""Helpers for automated-step tests."""

import time

from deployments.models import Step
from rollouts.models import RunState, TaskRun

FINAL = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT, RunState.LOST)


def step_with_action(deployment, action, config=None, title="Step 1"):
    """Give a deployment's step an action (as if its runbook had it)."""
    step = Step.objects.get(deployment=deployment, title=title)
    Step.objects.filter(pk=step.pk).update(action=action, action_config=config or {})
    step.refresh_from_db()
    return step


def wait_for_run(run_id, states=FINAL, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = TaskRun.objects.get(pk=run_id)
        if run.state in states:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {TaskRun.objects.get(pk=run_id).state} after {timeout}s")
