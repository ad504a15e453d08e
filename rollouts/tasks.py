"""Thin Celery tasks: ids in, the domain function does the work."""

from celery import shared_task

from rollouts import runs
from rollouts.controller import tick_all


@shared_task(name="rollouts.execute_run", ignore_result=True, acks_late=True)
def execute_run_task(*, run_id: int):
    # acks_late: a worker killed mid-run leaves the message for redelivery, and the
    # claim in execute_run makes that redelivery a no-op instead of a second backup.
    return runs.execute_run(run_id)


@shared_task(name="rollouts.tick_rollouts", ignore_result=True, expires=5)
def tick_rollouts_task():
    # Beat sends this every WARROOM_ROLLOUT_TICK_SECONDS; a tick that waited in the
    # queue longer than a few seconds is stale and expires instead of piling up.

    return tick_all()


@shared_task(name="rollouts.reap_lost_runs", ignore_result=True)
def reap_lost_runs_task():
    return runs.reap_lost_runs()
