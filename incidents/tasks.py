"""Thin Celery tasks: the domain function does the work."""

from celery import shared_task

from incidents import services


@shared_task(name="incidents.escalate_due", ignore_result=True, expires=30)
def escalate_due_task():
    """Beat: page the next escalation level of unacknowledged incidents whose wait is over."""
    return services.escalate_due()
