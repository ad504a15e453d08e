"""Signed webhooks: one format for every webhook Warroom sends and receives.

A request carries the time it was signed and an HMAC-SHA256 over that time and the body::

    X-Warroom-Timestamp: 1764410000
    X-Warroom-Signature: t=1764410000,sha256=<hex HMAC-SHA256(secret, b"1764410000." + body)>

The timestamp is inside the signed bytes, so a receiver that refuses requests older
than its window (``REPLAY_WINDOW_SECONDS``, five minutes) cannot be fed an old,
captured request again later. Within the window a receiver that must not act twice
deduplicates (comms webhooks carry ``X-Warroom-Idempotency-Key``; router webhooks set
absolute weights, so a repeat changes nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Warroom-Timestamp"
SIGNATURE_HEADER = "X-Warroom-Signature"
REPLAY_WINDOW_SECONDS = 300


class BadSignature(Exception):
    """The request is not signed with the shared secret, or it is outside the replay window."""


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def _as_bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def signed_headers(secret: bytes | str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body`` at ``now`` (default: the current time)."""
    timestamp = int(time.time() if now is None else now)
    digest = _digest(_as_bytes(secret), timestamp, body)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"t={timestamp},sha256={digest}"}


def _parse(value: str) -> tuple[int, str]:
    parts = dict(part.strip().split("=", 1) for part in value.split(",") if "=" in part)
    try:
        return int(parts["t"]), parts["sha256"]
    except (KeyError, ValueError):
        raise BadSignature("the signature header is not t=<unix time>,sha256=<hex>") from None


def _header(headers, name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # a plain dict: header names arrive in any case (urllib sends "X-warroom-signature")
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value


def verify_signature(
    secret: bytes | str, body: bytes, headers, tolerance: int = REPLAY_WINDOW_SECONDS, now: float | None = None
) -> int:
    """Check a received request; returns its timestamp or raises BadSignature saying why.

    ``headers``: Django's ``request.headers``, ``http.server`` headers or a plain dict.
    """
    secret = _as_bytes(secret)
    if not secret:
        raise BadSignature("no shared secret is configured")
    value = _header(headers, SIGNATURE_HEADER) or ""
    if not value:
        raise BadSignature(f"no {SIGNATURE_HEADER} header")
    timestamp, digest = _parse(value)
    stated = _header(headers, TIMESTAMP_HEADER)
    if stated is not None and stated.strip() != str(timestamp):
        raise BadSignature(f"{TIMESTAMP_HEADER} does not match the signed time")
    if not hmac.compare_digest(_digest(secret, timestamp, body), digest):
        raise BadSignature("the signature does not match the body")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance:
        raise BadSignature(f"signed {int(age)} s ago, outside the {tolerance} s replay window")
    return timestamp
