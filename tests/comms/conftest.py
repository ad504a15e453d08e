"""Real receivers for comms tests: an SMTP server (aiosmtpd) and an HTTP webhook server,
both on free loopback ports, started and stopped by the test."""

from __future__ import annotations

import json
import logging
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller

from comms import services
from comms.models import Transport, WebhookEndpoint
from tests.conftest import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd is chatty at INFO


class SmtpRecorder:
    """aiosmtpd handler: keeps every message; ``fail_next`` answers 451 (try later) that many times."""

    def __init__(self):
        self.messages = []
        self.fail_next = 0
        self.port = None

    async def handle_DATA(self, server, session, envelope):
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "email": message_from_bytes(envelope.content, policy=policy.default),
            }
        )
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    recorder = SmtpRecorder()
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_server):
    """In-process sends go to the test's SMTP server through Django's real SMTP backend."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "Warroom <warroom@example.test>"
    return smtp_server


class WebhookServer:
    """Records every POST (headers, body, monotonic time); answers ``fail_status`` to the
    first ``fail_first`` requests, then 200."""

    def __init__(self, *, fail_first=0, fail_status=503):
        self.requests = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.requests.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
                status = recorder.fail_status if len(recorder.requests) <= recorder.fail_first else 200
                reply = json.dumps({"ok": status == 200}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def accepted(self):
        return self.requests[self.fail_first :]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_server():
    servers = []

    def _start(**kwargs):
        server = WebhookServer(**kwargs)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


def email_channel(deployment, lead, *addresses, name="Users"):
    return services.save_channel(deployment, lead, name=name, transport=Transport.EMAIL, recipients=", ".join(addresses))


def webhook_channel(deployment, lead, url, *, secret_env="WARROOM_TEST_HOOK_SECRET", name="Team chat", pages=False):
    """What an administrator defines once (the webhook), then the lead's channel naming it."""
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        name=f"hook-{urlsplit(url).port or 'x'}-{secret_env.lower() or 'unsigned'}".replace("_", "-"),
        defaults={"url": url, "secret_env": secret_env},
    )
    return services.save_channel(
        deployment, lead, name=name, transport=Transport.WEBHOOK, endpoint=endpoint.name, carries_pages=pages
    )


def simple_template(deployment, lead, channels, **kwargs):
    defaults = {
        "name": "Go-live",
        "subject": "{{ deployment.service }} {{ deployment.version }} is live",
        "body": "Dear users,\n{{ deployment.name }} is complete.\nWindow ended {{ window.end|default:'on time' }}.",
        "channel_ids": [c.pk for c in channels],
    }
    return services.save_template(deployment, lead, **{**defaults, **kwargs})
