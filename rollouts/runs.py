"""Task runs: start, execute (inside the Celery task), cancel, and reap the lost.

Starting and cancelling are the war room's service functions; ``execute_run`` is
what the thin Celery task calls. A run is claimed with a guarded state change
(queued → running), so a redelivered task can never run the same backup twice.
"""

from __future__ import annotations

import logging
import re
import socket
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from checklists.models import ItemKind, StepAction
from deployments import actors, live
from deployments import services as deployment_services
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import Item, Step
from deployments.permissions import PermissionDenied, access_for
from deployments.services import InvalidChange
from rollouts import actions, panels, tasks
from rollouts.models import ACTIVE_RUN_STATES, RunState, Target, TargetBinding, TaskRun
from rollouts.runner import ActionFailed, RunCancelled, RunContext, RunTimedOut, mask, secrets_in_url
from warroom.celery import app

log = logging.getLogger(__name__)


def _push(deployment_id: int, run_id: int) -> None:
    live.publish_on_commit(deployment_id, lambda: panels.render_run_push(run_id))


@transaction.atomic
def bind_target(deployment, actor, target: Target) -> TargetBinding:
    access = access_for(actor, deployment)
    if not access.is_lead:
        raise PermissionDenied("Only the lead may bind targets.")
    binding, created = TargetBinding.objects.get_or_create(deployment=deployment, target=target)
    if created:
        record_event(deployment.pk, actor=actor, action="target.bound", obj=binding, summary=f"Target {target.name} bound")
    return binding


@transaction.atomic
def start_run(step_id: int, actor, *, target_id: int | None = None) -> TaskRun:
    """Press "Run" on a step: only actions the runbook defines, only on bound targets."""
    lock_deployment_of(Step, step_id)  # deployments/locks.py: the deployment first
    step = Step.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=step_id)
    deployment = step.deployment
    access = access_for(actor, deployment)
    if not access.can_view:
        raise Step.DoesNotExist
    if not access.can_act_on_step(step):
        raise PermissionDenied(f"Only the {step.role.name if step.role else 'role holders'} or the lead may run this step.")
    if not step.action:
        raise InvalidChange("This step has no automated action.")
    if step.action == StepAction.ROLLOUT:
        raise InvalidChange("This step is a traffic rollout: start it from the rollout panel.")
    if deployment.is_finished:
        raise InvalidChange("This deployment is finished.")
    bindings = TargetBinding.objects.filter(deployment=deployment).select_related("target")
    if target_id is not None:
        bindings = bindings.filter(target_id=target_id)
    targets = [b.target for b in bindings]
    if not targets:
        raise InvalidChange("No target is bound to this deployment for that run: ask an admin or the lead to bind one.")
    if len(targets) > 1:
        raise InvalidChange("Several targets are bound: choose one.")
    if TaskRun.objects.filter(step=step, state__in=ACTIVE_RUN_STATES).exists():
        raise InvalidChange("This step is already running.")
    if not queue_reachable():
        raise QueueUnavailable(QUEUE_DOWN)
    run = TaskRun.objects.create(
        deployment=deployment, step=step, target=targets[0], action=step.action, config=step.action_config, started_by=actor
    )
    record_event(
        deployment.pk,
        actor=actor,
        action="run.queued",
        obj=run,
        summary=f"{StepAction(step.action).label} on {run.target.name} queued (run #{run.pk})",
    )
    transaction.on_commit(lambda: _enqueue(run.pk))
    _push(deployment.pk, run.pk)
    return run


QUEUE_DOWN = "Cannot reach the task queue (Redis): nothing was started. Try again when it is back."


class QueueUnavailable(InvalidChange):
    """The broker cannot be reached: the run was not started (and is not left queued)."""

    http_status = 503


def queue_reachable(timeout: float = 2.0) -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception:
        return False
    return True


ENQUEUE_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}


def _enqueue(run_id: int) -> None:
    """After commit: hand the run to a worker. If the broker went away since the check, the
    run fails at once with the reason (never stays queued for nobody) and the caller is told."""
    try:
        # A bounded retry: a connection left stale by a Redis restart is replaced, a Redis
        # that is really down is given up on within about a second.
        tasks.execute_run_task.apply_async(kwargs={"run_id": run_id}, retry=True, retry_policy=ENQUEUE_RETRY)
    except Exception as exc:  # kombu raises several kinds when the broker is down
        log.warning("run %s not enqueued: %r", run_id, exc)
        with transaction.atomic():
            run = TaskRun.objects.select_related("target").get(pk=run_id)
            lock_deployment(run.deployment_id)
            if TaskRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
                state=RunState.FAILED, finished_at=timezone.now(), error=QUEUE_DOWN
            ):
                record_event(
                    run.deployment_id,
                    actor=None,
                    action="run.failed",
                    obj=run,
                    summary=f"{run.get_action_display()} on {run.target.name} not started (run #{run.pk}): {QUEUE_DOWN}",
                )
                _push(run.deployment_id, run.pk)
        raise QueueUnavailable(QUEUE_DOWN) from None


@transaction.atomic
def cancel_run(run_id: int, actor) -> TaskRun:
    lock_deployment_of(TaskRun, run_id)
    run = TaskRun.objects.select_for_update(of=("self",)).select_related("step", "deployment").get(pk=run_id)
    access = access_for(actor, run.deployment)
    if not access.can_view:
        raise TaskRun.DoesNotExist
    if not (access.is_lead or access.can_act_on_step(run.step)):
        raise PermissionDenied("Only the step's role or the lead may cancel this run.")
    if run.state == RunState.QUEUED:
        run.state, run.finished_at, run.error = RunState.CANCELLED, timezone.now(), "Cancelled before it started"
        run.save(update_fields=["state", "finished_at", "error"])
    elif run.state == RunState.RUNNING:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
    else:
        raise InvalidChange(f"This run is already {run.get_state_display().lower()}.")
    record_event(
        run.deployment_id,
        actor=actor,
        action="run.cancel",
        obj=run,
        summary=f"Cancel requested for run #{run.pk} ({run.get_action_display()})",
    )
    _push(run.deployment_id, run.pk)
    return run


def _claim(run_id: int) -> bool:
    """queued → running, once. A redelivered or duplicate task finds nothing to claim."""
    now = timezone.now()
    claimed = TaskRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempt=F("attempt") + 1,
        worker=f"{socket.gethostname()}",
    )
    return bool(claimed)


def execute_run(run_id: int) -> str:
    """The body of the Celery task: claim, perform, record. Returns the final state."""
    if not _claim(run_id):
        return "not-claimed"
    run = TaskRun.objects.select_related("target", "step", "deployment").get(pk=run_id)
    target = run.target
    ctx = RunContext(run=run, secrets=secrets_in_url(target.database_url()))
    with transaction.atomic():
        record_event(
            run.deployment_id,
            actor=None,
            action="run.started",
            obj=run,
            summary=f"{run.get_action_display()} on {target.name} started (run #{run.pk})",
        )
        _push(run.deployment_id, run.pk)
    ctx.start_heartbeat()
    state, error, result = RunState.SUCCEEDED, "", {}
    try:
        result = actions.perform(ctx, target, run.action, run.config)
    except RunCancelled:
        state, error = RunState.CANCELLED, "Cancelled"
    except RunTimedOut as exc:
        state, error = RunState.TIMED_OUT, str(exc)
    except ActionFailed as exc:
        state, error = RunState.FAILED, str(exc)
        result = run.result or {}
    except Exception as exc:  # a bug or an unexpected failure: record it in words, keep the worker alive
        log.exception("run %s crashed", run_id)
        state, error = RunState.FAILED, f"Unexpected error: {type(exc).__name__}: {mask(str(exc), ctx.secrets)}"
    finally:
        ctx.stop()
    if state == RunState.FAILED:
        ctx.log(f"[warroom] failed: {error}")
        ctx.flush()
    return finish_run(run, state, error=error, result=result)


@transaction.atomic
def finish_run(run: TaskRun, state: str, *, error: str = "", result: dict | None = None) -> str:
    """running → final state, guarded: a run the reaper already marked lost stays lost."""
    lock_deployment(run.deployment_id)
    finished = TaskRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
        state=state,
        finished_at=timezone.now(),
        error=error[:2000],
        result=result or {},
        exit_code=run.exit_code,
    )
    if not finished:
        return TaskRun.objects.get(pk=run.pk).state
    run.refresh_from_db()
    word = {
        RunState.SUCCEEDED: "succeeded",
        RunState.FAILED: "failed",
        RunState.CANCELLED: "was cancelled",
        RunState.TIMED_OUT: "timed out",
    }.get(state, state)
    record_event(
        run.deployment_id,
        actor=None,
        action=f"run.{state}",
        obj=run,
        summary=f"{run.get_action_display()} on {run.target.name} {word} (run #{run.pk})" + (f": {error}" if error else ""),
        after={"state": state, "exit_code": run.exit_code, "result": _public_result(run.result)},
    )
    if state == RunState.SUCCEEDED:
        _tick_proven_items(run)
    _push(run.deployment_id, run.pk)
    return state


def _public_result(result: dict) -> dict:
    return {
        k: v
        for k, v in (result or {}).items()
        if k
        in ("path", "size_bytes", "sha256", "verified", "passed", "failed", "exit_code", "duration_s", "mode", "on", "command")
    }


def _tick_proven_items(run: TaskRun) -> None:
    """Tick the step's verification lines this run proves, as the system with the run as evidence."""
    patterns = list(actions.PROOFS.get(run.action, []))
    if run.action == StepAction.BACKUP and not run.result.get("restore_check", {}).get("ok"):
        patterns = patterns[:1]  # integrity is only proven by a test restore
    evidence = f"Run #{run.pk}: " + ", ".join(f"{k}={v}" for k, v in _public_result(run.result).items())
    actor = actors.task_run(run.pk, run.step_id)
    for item in Item.objects.filter(step_id=run.step_id, kind=ItemKind.CHECK, is_group=False, checked=False):
        if any(re.search(p, item.text, re.I) for p in patterns):
            try:
                deployment_services.update_item(item.pk, actor, revision=None, checked=True, note=evidence[:2000])
            except (deployment_services.DeploymentFinished, PermissionDenied):
                # Finished meanwhile, or a line that follows its own record: the run's result
                # and event stand, the checklist stays as the people left it.
                continue


def reap_lost_runs(now=None) -> int:
    """Runs whose worker stopped beating are lost: never left running, never reported a success."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WARROOM_RUN_LOST_AFTER_SECONDS)
    reaped = 0
    for run in TaskRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=cutoff).select_related("target"):
        with transaction.atomic():
            lock_deployment(run.deployment_id)
            if not TaskRun.objects.filter(pk=run.pk, state=RunState.RUNNING, heartbeat_at__lt=cutoff).update(
                state=RunState.LOST,
                finished_at=now,
                error=f"No heartbeat from worker {run.worker or '?'} since {run.heartbeat_at:%H:%M:%S} UTC: the worker died",
            ):
                continue
            record_event(
                run.deployment_id,
                actor=None,
                action="run.lost",
                obj=run,
                summary=f"{run.get_action_display()} on {run.target.name} lost: its worker stopped (run #{run.pk})",
            )
            _push(run.deployment_id, run.pk)
            reaped += 1
        remove_partial_files(run)
    return reaped


def remove_partial_files(run: TaskRun) -> list[str]:
    """A dead worker leaves its unfinished backup behind: remove it (a finished dump has its final name)."""
    store = Path(settings.WARROOM_BACKUP_DIR) / run.target.name
    removed = []
    for partial in store.glob(f"*-run{run.pk}.dump.partial"):
        partial.unlink(missing_ok=True)
        removed.append(str(partial))
    return removed


def event_places(deployment):
    """Task runs in the event log stand in their step (deployments.hooks.place_events_in_steps)."""
    for run_id, step_id in TaskRun.objects.filter(deployment=deployment).values_list("pk", "step_id"):
        yield "taskrun", run_id, step_id
