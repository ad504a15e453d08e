"""Thin Celery tasks: ids in, comms.delivery / comms.services do the work."""

from celery import shared_task

from comms import delivery, services
from comms.models import Delivery


@shared_task(name="comms.deliver", bind=True, ignore_result=True, acks_late=True, max_retries=None)
def deliver_task(self, *, delivery_id: int):
    # The attempt count is bounded on the row (max_attempts), not here: a redelivered
    # message re-reads it, and the claim inside attempt_delivery makes duplicates no-ops.
    if not Delivery.objects.filter(pk=delivery_id).exists():
        return None
    outcome = delivery.attempt_delivery(delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.state


@shared_task(name="comms.send_due", ignore_result=True, expires=60)
def send_due_task():
    """Beat: scheduled messages whose T-0 + offset has come."""
    return services.send_due()
