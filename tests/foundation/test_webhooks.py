"""Webhook signatures carry their time: a captured request cannot be replayed later."""

import json
import time

import pytest

from rollouts.demo import SECRET_ENV
from warroom.webhooks import REPLAY_WINDOW_SECONDS, BadSignature, signed_headers, verify_signature

SECRET = b"shared-hook-secret"
BODY = b'{"weights": {"new": 25, "stable": 75}}'


def test_a_fresh_request_is_accepted():
    headers = signed_headers(SECRET, BODY)
    assert headers["X-Warroom-Signature"].startswith(f"t={headers['X-Warroom-Timestamp']},sha256=")
    assert verify_signature(SECRET, BODY, headers) == int(headers["X-Warroom-Timestamp"])


def test_a_replayed_request_older_than_the_window_is_refused():
    captured = signed_headers(SECRET, BODY, now=time.time() - REPLAY_WINDOW_SECONDS - 1)
    with pytest.raises(BadSignature, match="replay window"):
        verify_signature(SECRET, BODY, captured)
    # Inside the window it still counts (clocks differ a little between hosts).
    assert verify_signature(SECRET, BODY, signed_headers(SECRET, BODY, now=time.time() - 60))


def test_the_timestamp_cannot_be_moved_without_the_secret():
    old = signed_headers(SECRET, BODY, now=time.time() - 3600)
    fresh_time = str(int(time.time()))
    moved = {
        "X-Warroom-Timestamp": fresh_time,
        "X-Warroom-Signature": old["X-Warroom-Signature"].replace(old["X-Warroom-Timestamp"], fresh_time),
    }
    with pytest.raises(BadSignature, match="does not match the body"):
        verify_signature(SECRET, BODY, moved)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "no X-Warroom-Signature"),
        ({"X-Warroom-Signature": "sha256=abc"}, "not t=<unix time>"),
        ({"X-Warroom-Signature": "t=soon,sha256=abc"}, "not t=<unix time>"),
    ],
)
def test_malformed_signatures_are_refused(headers, words):
    with pytest.raises(BadSignature, match=words):
        verify_signature(SECRET, BODY, headers)


def test_wrong_secret_or_changed_body_is_refused():
    headers = signed_headers(SECRET, BODY)
    with pytest.raises(BadSignature):
        verify_signature(b"another secret", BODY, headers)
    with pytest.raises(BadSignature):
        verify_signature(SECRET, BODY.replace(b"25", b"100"), headers)
    with pytest.raises(BadSignature, match="no shared secret"):
        verify_signature(b"", BODY, headers)


def test_header_names_in_any_case():
    headers = {k.lower(): v for k, v in signed_headers(SECRET, BODY).items()}
    assert verify_signature(SECRET, BODY, headers)


def test_demo_router_accepts_fresh_and_refuses_replayed_requests(db, client, monkeypatch, demo_on):
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())

    def post(headers):
        extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        return client.post("/demo/router", data=BODY, content_type="application/json", **extra)

    fresh = post(signed_headers(SECRET, BODY))
    assert fresh.status_code == 200 and json.loads(fresh.content)["new"] == 25
    replayed = post(signed_headers(SECRET, BODY, now=time.time() - REPLAY_WINDOW_SECONDS - 30))
    assert replayed.status_code == 403 and b"replay window" in replayed.content
    assert post({"X-Warroom-Signature": "sha256=" + "0" * 64}).status_code == 403
