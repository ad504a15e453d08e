from celery import shared_task

from deployments import services


@shared_task(name="deployments.mark_late_steps", ignore_result=True)
def mark_late_steps():
    """Beat: record and push steps that ran past their planned end."""
    return services.mark_late_steps()
