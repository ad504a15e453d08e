from celery import shared_task

from deployments import checkpoints, services


@shared_task(name="deployments.mark_late_steps", ignore_result=True)
def mark_late_steps():
    """Beat: record and push steps that ran past their planned end."""
    return services.mark_late_steps()


@shared_task(name="deployments.checkpoint_chains", ignore_result=True)
def checkpoint_chains():
    """Beat: a signed checkpoint of every deployment whose event chain grew since its last one."""
    return checkpoints.checkpoint_moved_heads()
