"""The real path: a send queued on commit, a real Celery worker process delivering it,
retries scheduled by Celery with back-off, SMTP configured through the environment."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from comms import services
from comms.models import Delivery, DeliveryState
from deployments import services as deployment_services
from deployments.models import Event
from tests.comms.conftest import email_channel, simple_template, webhook_channel
from tests.conftest import _terminate, start_worker
from warroom.webhooks import verify_signature

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = "worker-hook-secret"
RETRY_BASE = 0.8


@pytest.fixture
def comms_worker(process_env, smtp_server, tmp_path):
    """A worker whose environment points SMTP at the test's server and holds the webhook secret."""
    env = {
        **process_env,
        "WARROOM_SMTP_HOST": "127.0.0.1",
        "WARROOM_SMTP_PORT": str(smtp_server.port),
        "WARROOM_SMTP_TLS": "0",
        "WARROOM_FROM_EMAIL": "warroom@example.test",
        "WARROOM_TEST_HOOK_SECRET": SECRET,
        "WARROOM_COMMS_RETRY_BASE_SECONDS": str(RETRY_BASE),
        "WARROOM_COMMS_MAX_ATTEMPTS": "5",
    }
    env.pop("WARROOM_EMAIL_BACKEND", None)
    proc = start_worker(env, tmp_path / "worker.log", name="commsworker")
    try:
        yield proc
    finally:
        _terminate(proc)


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_webhook_fails_twice_then_succeeds_with_back_off_and_is_delivered_once(crew, comms_worker, webhook_server):
    deployment, people = crew
    server = webhook_server(fail_first=2, fail_status=503)
    channel = webhook_channel(deployment, people["lead"], server.url)
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    pk = message.deliveries.get().pk

    row = wait_for(lambda: Delivery.objects.filter(pk=pk, state=DeliveryState.SENT).first(), what="the delivery")
    assert row.attempts == 3
    assert len(server.requests) == 3 and len(server.accepted) == 1
    # Same delivery each time: same key, same signed body.
    keys = {r["headers"]["X-Warroom-Idempotency-Key"] for r in server.requests}
    assert keys == {str(row.idempotency_key)}
    for request in server.requests:
        verify_signature(SECRET, request["body"], request["headers"])
    # Back-off: about RETRY_BASE, then twice that.
    first_gap = server.requests[1]["at"] - server.requests[0]["at"]
    second_gap = server.requests[2]["at"] - server.requests[1]["at"]
    assert first_gap >= RETRY_BASE * 0.9, first_gap
    assert second_gap >= 2 * RETRY_BASE * 0.9, second_gap
    actions = list(
        Event.objects.filter(deployment=deployment, action__startswith="comms.delivery")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["comms.delivery.retrying", "comms.delivery.retrying", "comms.delivery.sent"]
    time.sleep(RETRY_BASE * 3)  # nothing more arrives later
    assert len(server.requests) == 3


def test_a_scheduled_message_reaches_smtp_through_the_worker(crew, comms_worker, smtp_server):
    deployment, people = crew
    deployment_services.reanchor_t0(deployment.pk, people["lead"], timezone.now() + timedelta(minutes=30), reason="tonight")
    channel = email_channel(deployment, people["lead"], "all-users@example.com")
    template = simple_template(deployment, people["lead"], [channel], name="Starting", offset_minutes=-20)
    services.schedule_template(template.pk, people["lead"])
    assert services.send_due() == 0
    assert services.send_due(now=timezone.now() + timedelta(minutes=11)) == 1

    wait_for(lambda: smtp_server.messages, what="the e-mail")
    delivery = wait_for(lambda: Delivery.objects.filter(deployment=deployment, state=DeliveryState.SENT).first(), what="sent")
    [received] = smtp_server.messages
    assert received["to"] == ["all-users@example.com"]
    assert received["email"]["Subject"] == "smartwallet 1.2.0 is live"
    assert received["email"]["Message-ID"] == f"<{delivery.idempotency_key}@warroom>"
    assert f"accepted by 127.0.0.1:{smtp_server.port}" in delivery.result
