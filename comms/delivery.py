"""Delivering one message to one channel: e-mail through Django's mail backend (SMTP by
default, configured by the environment), or a Slack-compatible webhook signed with
HMAC-SHA256.

``attempt_delivery`` is what the thin Celery task calls. It claims the delivery with a
guarded update (queued/retrying → sending) before touching the network, so a
redelivered or duplicated task finds nothing to do; transient failures come back as
"retry in N seconds" (exponential back-off, bounded attempts), permanent ones fail at once.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from comms import services
from comms.models import Delivery, DeliveryState, Transport
from deployments.events import record_event
from warroom.webhooks import signed_headers

MAX_BACKOFF_SECONDS = 3600
WEBHOOK_TIMEOUT_SECONDS = 10


class TransientError(Exception):
    """Worth another try later (connection refused, timeout, 5xx, 429, SMTP 4xx)."""


class PermanentError(Exception):
    """Another try would fail the same way (bad address, 4xx, missing secret)."""


@dataclass(frozen=True)
class Outcome:
    state: str  # "sent", "retry", "failed" or "skipped" (someone else has it, or it is done)
    retry_in: float | None = None


def backoff_seconds(attempt: int) -> float:
    """Wait before attempt ``attempt + 1``: base, 2×base, 4×base, … capped at an hour."""
    return min(settings.WARROOM_COMMS_RETRY_BASE_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def attempt_delivery(delivery_id: int) -> Outcome:
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, state__in=[DeliveryState.QUEUED, DeliveryState.RETRYING]).update(
        state=DeliveryState.SENDING, attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=None
    )
    if not claimed:
        return Outcome("skipped")
    delivery = Delivery.objects.select_related("message", "channel").get(pk=delivery_id)
    try:
        result = _deliver(delivery)
    except PermanentError as exc:
        _finish(delivery, DeliveryState.FAILED, error=str(exc))
        return Outcome("failed")
    except TransientError as exc:
        if delivery.attempts >= delivery.max_attempts:
            _finish(delivery, DeliveryState.FAILED, error=f"{exc} (gave up after {delivery.attempts} attempts)")
            return Outcome("failed")
        wait = backoff_seconds(delivery.attempts)
        _finish(delivery, DeliveryState.RETRYING, error=str(exc), next_attempt_at=timezone.now() + timedelta(seconds=wait))
        return Outcome("retry", retry_in=wait)
    _finish(delivery, DeliveryState.SENT, result=result)
    return Outcome("sent")


def _finish(delivery: Delivery, state: str, *, error: str = "", result: str = "", next_attempt_at=None) -> None:
    now = timezone.now()
    fields = {"state": state, "next_attempt_at": next_attempt_at}
    if state == DeliveryState.SENT:
        fields.update(sent_at=now, result=result[:300], last_error="")
    else:
        fields.update(last_error=error[:2000])
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.SENDING).update(**fields)
        subject = delivery.message.subject
        if state == DeliveryState.SENT:
            action, summary = "comms.delivery.sent", f"“{subject}” delivered to {delivery.target_label}: {result}"
        elif state == DeliveryState.RETRYING:
            wait = int((next_attempt_at - now).total_seconds()) if next_attempt_at else 0
            action = "comms.delivery.retrying"
            summary = (
                f"“{subject}” to {delivery.target_label}: attempt {delivery.attempts} failed ({error}); next try in {wait} s"
            )
        else:
            action, summary = "comms.delivery.failed", f"“{subject}” to {delivery.target_label} FAILED: {error}"
        record_event(
            delivery.deployment_id,
            actor=None,
            action=action,
            obj=delivery,
            summary=summary,
            after={"attempt": delivery.attempts, "result": result, "error": error[:500], "key": str(delivery.idempotency_key)},
        )
        services._push(delivery.deployment_id)


def _deliver(delivery: Delivery) -> str:
    if delivery.transport == Transport.EMAIL:
        return _send_email(delivery)
    if delivery.transport == Transport.WEBHOOK:
        return _send_webhook(delivery)
    raise PermanentError(f"unknown transport {delivery.transport!r}")


# --- e-mail ---------------------------------------------------------------------------------


def _send_email(delivery: Delivery) -> str:
    message = delivery.message
    recipients = list(delivery.recipients)
    if not recipients:
        raise PermanentError("no recipients")
    key = str(delivery.idempotency_key)
    # One recipient sees their own address; a list goes out as Bcc so users do not see each other.
    to, bcc = (recipients, []) if len(recipients) == 1 else ([], recipients)
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        bcc=bcc,
        headers={"Message-ID": f"<{key}@warroom>", "X-Warroom-Idempotency-Key": key},
        connection=get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT),
    )
    email.attach_alternative(message.html, "text/html")
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"the mail server refused {', '.join(exc.recipients)}") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentError(f"the mail server refused the login (SMTP {exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        error = f"SMTP {exc.smtp_code}: {text[:200]}"
        raise (TransientError(error) if 400 <= exc.smtp_code < 500 else PermanentError(error)) from None
    except BadHeaderError as exc:
        raise PermanentError(str(exc)) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientError(f"mail server {settings.EMAIL_HOST}:{settings.EMAIL_PORT} unreachable: {exc}") from None
    return f"{_what_the_backend_did()} for {len(recipients)} recipient(s)"


# What each of Django's own mail backends really does with a message: only SMTP reaches a server.
_BACKEND_RESULTS = {
    "django.core.mail.backends.console.EmailBackend": "written to the console (no mail server configured; not sent)",
    "django.core.mail.backends.filebased.EmailBackend": "written to a file (no mail server configured; not sent)",
    "django.core.mail.backends.locmem.EmailBackend": "kept in memory by the test mail backend (not sent)",
    "django.core.mail.backends.dummy.EmailBackend": "discarded by the dummy mail backend (not sent)",
}


def _what_the_backend_did() -> str:
    backend = settings.EMAIL_BACKEND
    if backend == "django.core.mail.backends.smtp.EmailBackend":
        return f"accepted by {settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    return _BACKEND_RESULTS.get(backend, f"handed to the mail backend {backend.rsplit('.', 2)[-2]}")


# --- webhooks -------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be re-sent as a GET without its body: refuse instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0917 (urllib signature)
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _send_webhook(delivery: Delivery) -> str:
    channel = delivery.channel
    if channel is None or channel.endpoint is None:
        raise PermanentError("the channel was removed, or names no webhook")
    endpoint = channel.endpoint  # the administrator's address and secret, never a typed one
    body = json.dumps({"text": delivery.message.slack}).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Warroom",
        "X-Warroom-Idempotency-Key": str(delivery.idempotency_key),
    }
    if endpoint.secret_env:
        secret = os.environ.get(endpoint.secret_env, "")
        if not secret:
            raise PermanentError(f"the environment variable {endpoint.secret_env} (this webhook's secret) is not set")
        headers.update(signed_headers(secret, body))
    request = urllib.request.Request(endpoint.url, data=body, method="POST", headers=headers)  # noqa: S310 (an administrator's http(s) URL)
    try:
        with _opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        error = f"HTTP {exc.code} from {channel.target_label}"
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(error) from None
        raise PermanentError(error) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"{channel.target_label} unreachable: {reason}") from None
    return f"HTTP {status}"
