"""Deliveries against real receivers: an SMTP conversation with aiosmtpd, a signed
webhook to a local HTTP server, transient failures retried, nothing sent twice."""

import json

import pytest

from comms import delivery, services
from comms.models import Delivery, DeliveryState, WebhookEndpoint
from deployments.models import Event
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from tests.comms.conftest import email_channel, simple_template, webhook_channel
from warroom.webhooks import verify_signature

SECRET = "s3cret-hook-key"


def test_email_goes_through_a_real_smtp_conversation(crew, smtp_settings):
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "ops@example.com")
    template = simple_template(deployment, people["lead"], [channel])
    message = services.send_template(template.pk, people["lead"])
    queued = message.deliveries.get()
    assert queued.state == DeliveryState.QUEUED

    assert delivery.attempt_delivery(queued.pk).state == "sent"
    [received] = smtp_settings.messages
    email = received["email"]
    assert received["to"] == ["ops@example.com"] and received["from"] == "warroom@example.test"
    assert email["Subject"] == "smartwallet 1.2.0 is live"
    assert email["Message-ID"] == f"<{queued.idempotency_key}@warroom>"
    assert email["X-Warroom-Idempotency-Key"] == str(queued.idempotency_key)
    text = email.get_body(("plain",)).get_content()
    assert "Release 1.2 is complete." in text
    assert "<p>Dear users,<br>" in email.get_body(("html",)).get_content()

    queued.refresh_from_db()
    assert queued.state == DeliveryState.SENT and queued.attempts == 1 and "accepted by 127.0.0.1" in queued.result
    assert Event.objects.filter(deployment=deployment, action="comms.delivery.sent", object_id=str(queued.pk)).exists()
    # A duplicate task finds the delivery done: the server hears nothing more.
    assert delivery.attempt_delivery(queued.pk).state == "skipped"
    assert len(smtp_settings.messages) == 1


def test_a_list_goes_out_as_bcc(crew, smtp_settings):
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "a@example.com", "b@example.com")
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    delivery.attempt_delivery(message.deliveries.get().pk)
    [received] = smtp_settings.messages
    assert sorted(received["to"]) == ["a@example.com", "b@example.com"]
    assert "a@example.com" not in str(received["email"].get("To", ""))


def test_smtp_busy_is_retried_with_back_off_then_delivered_once(crew, smtp_settings, settings):
    settings.WARROOM_COMMS_RETRY_BASE_SECONDS = 2
    deployment, people = crew
    smtp_settings.fail_next = 2
    channel = email_channel(deployment, people["lead"], "ops@example.com")
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    pk = message.deliveries.get().pk
    first = delivery.attempt_delivery(pk)
    assert (first.state, first.retry_in) == ("retry", 2)
    row = Delivery.objects.get(pk=pk)
    assert row.state == DeliveryState.RETRYING and "SMTP 451" in row.last_error and row.next_attempt_at is not None
    assert delivery.attempt_delivery(pk).retry_in == 4  # doubled
    assert delivery.attempt_delivery(pk).state == "sent"
    assert len(smtp_settings.messages) == 1
    assert Delivery.objects.get(pk=pk).attempts == 3
    assert Event.objects.filter(deployment=deployment, action="comms.delivery.retrying").count() == 2


def test_attempts_are_bounded(crew, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    settings.WARROOM_COMMS_MAX_ATTEMPTS = 2
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "ops@example.com")
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    pk = message.deliveries.get().pk
    assert delivery.attempt_delivery(pk).state == "retry"
    assert delivery.attempt_delivery(pk).state == "failed"
    row = Delivery.objects.get(pk=pk)
    assert row.state == DeliveryState.FAILED and "gave up after 2 attempts" in row.last_error
    assert "unreachable" in row.last_error
    assert Event.objects.filter(deployment=deployment, action="comms.delivery.failed").exists()
    assert delivery.attempt_delivery(pk).state == "skipped"


def test_webhook_is_slack_compatible_and_signed(crew, webhook_server, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_HOOK_SECRET", SECRET)
    deployment, people = crew
    server = webhook_server()
    channel = webhook_channel(deployment, people["lead"], server.url)
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    pk = message.deliveries.get().pk
    assert delivery.attempt_delivery(pk).state == "sent"

    [request] = server.requests
    body = request["body"]
    verify_signature(SECRET, body, request["headers"])  # signed with a timestamp, within the replay window
    payload = json.loads(body)
    assert set(payload) == {"text"}
    assert payload["text"].startswith("*smartwallet 1.2.0 is live*\nDear users,")
    assert request["headers"]["X-Warroom-Idempotency-Key"] == str(Delivery.objects.get(pk=pk).idempotency_key)
    assert Delivery.objects.get(pk=pk).result == "HTTP 200"
    # The webhook's path is a secret on Slack: it appears nowhere in the record.
    assert "secret-path" not in Delivery.objects.get(pk=pk).target_label
    assert not Event.objects.filter(deployment=deployment, summary__contains="secret-path").exists()


def test_webhook_without_its_secret_is_not_sent_unsigned(crew, webhook_server, monkeypatch):
    monkeypatch.delenv("WARROOM_TEST_HOOK_SECRET", raising=False)
    deployment, people = crew
    server = webhook_server()
    channel = webhook_channel(deployment, people["lead"], server.url)
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    assert delivery.attempt_delivery(message.deliveries.get().pk).state == "failed"
    assert server.requests == []
    assert "WARROOM_TEST_HOOK_SECRET" in Delivery.objects.get(message=message).last_error


def test_a_client_error_is_not_retried(crew, webhook_server, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_HOOK_SECRET", SECRET)
    deployment, people = crew
    server = webhook_server(fail_first=5, fail_status=404)
    channel = webhook_channel(deployment, people["lead"], server.url)
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    assert delivery.attempt_delivery(message.deliveries.get().pk).state == "failed"
    assert len(server.requests) == 1
    assert Delivery.objects.get(message=message).last_error.startswith("HTTP 404 from http://127.0.0.1:")


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [("lead", True), ("po", True), ("qa", False), ("devops", False), ("observer", False)],
)
def test_who_may_send_a_template(crew, persona, allowed):
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "users@example.com")
    po_role = deployment.roles.get(name="Product Owner")
    template = simple_template(deployment, people["lead"], [channel], sender_role_id=po_role.pk)
    if allowed:
        assert services.send_template(template.pk, people[persona]).sender_label
    else:
        with pytest.raises(PermissionDenied, match="Only the Product Owner or the lead"):
            services.send_template(template.pk, people[persona])


def test_bad_channels_are_refused(crew):
    deployment, people = crew
    lead = people["lead"]
    with pytest.raises(InvalidChange, match="not an e-mail address"):
        services.save_channel(deployment, lead, name="x", transport="email", recipients="ops@example.com, nope")
    # A webhook's address is an administrator's: a channel can only name one that exists.
    with pytest.raises(InvalidChange, match="none is defined yet"):
        services.save_channel(deployment, lead, name="x", transport="webhook", endpoint="file:///etc/passwd")
    with pytest.raises(TypeError):
        services.save_channel(deployment, lead, name="x", transport="webhook", url="http://169.254.169.254/")  # no such input
    WebhookEndpoint.objects.create(name="team-chat", url="https://chat.example/hooks/1")
    with pytest.raises(InvalidChange, match=r"Choose one of the webhooks an administrator has defined \(team-chat\)"):
        services.save_channel(deployment, lead, name="x", transport="webhook", endpoint="other")
    with pytest.raises(InvalidChange, match="e-mail or webhook"):
        services.save_channel(deployment, lead, name="x", transport="pigeon")
    with pytest.raises(PermissionDenied):
        services.save_channel(deployment, people["qa"], name="x", transport="email", recipients="a@example.com")
