"""Live pushes to every screen watching a deployment.

One Channels group per deployment. A push carries a per-deployment sequence number
(an atomic Redis counter, shared by web and worker processes) with the counter's epoch
(made anew when Redis lost its data), and HTML fragments rendered from the same template
partials as the page; htmx swaps them out of band. A client that sees a gap in the
numbers, a new epoch, or reconnects, re-fetches the board. Each socket also receives a
heartbeat through the channel layer, so a screen can tell "live" from "silently cut off".
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

_redis_client = None


def redis_client() -> redis.Redis:
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def group_name(deployment_id: int) -> str:
    return f"deployment-{deployment_id}"


def viewer_group(deployment_id: int, user_id: int) -> str:
    """One person's sockets on one deployment: closed at once when their access goes."""
    return f"deployment-{deployment_id}-user-{user_id}"


EPOCH_KEY = "warroom:live:epoch"


def _seq_key(deployment_id: int) -> str:
    return f"warroom:seq:{deployment_id}"


def _new_epoch() -> str:
    return secrets.token_hex(6)


def current_position(deployment_id: int) -> tuple[str, int]:
    """(epoch, sequence number) of the last push; ("", 0) when Redis cannot be reached,
    so a page or a board fetch still renders from PostgreSQL while Redis is down.

    Redis keeps no data across a restart: the counter starts again from 0, so the epoch
    (made anew whenever it is missing) tells clients that numbers from before mean nothing.
    """
    try:
        pipe = redis_client().pipeline(transaction=True)
        pipe.set(EPOCH_KEY, _new_epoch(), nx=True)
        pipe.get(EPOCH_KEY)
        pipe.get(_seq_key(deployment_id))
        _, epoch, seq = pipe.execute()
    except redis.RedisError:
        return "", 0
    return epoch.decode(), int(seq or 0)


def current_seq(deployment_id: int) -> int:
    return current_position(deployment_id)[1]


def seq_marker(epoch: str, seq: int) -> str:
    return f'<div id="live-seq" hx-swap-oob="true" data-epoch="{epoch}" data-seq="{seq}" hidden></div>'


def beat_marker(epoch: str, seq: int) -> str:
    """The server's heartbeat: says the path from Redis to this screen works, and where the numbers are."""
    return f'<div id="live-beat" hx-swap-oob="true" data-epoch="{epoch}" data-seq="{seq}" hidden></div>'


def publish(deployment_id: int, fragments: list[str]) -> int:
    """Send fragments to every subscriber now. Returns the sequence number used."""
    pipe = redis_client().pipeline(transaction=True)
    pipe.set(EPOCH_KEY, _new_epoch(), nx=True)
    pipe.get(EPOCH_KEY)
    pipe.incr(_seq_key(deployment_id))
    _, epoch, seq = pipe.execute()
    html = seq_marker(epoch.decode(), seq) + "".join(fragments)
    _group_send(group_name(deployment_id), {"type": "board.push", "seq": seq, "html": html})
    return seq


def _group_send(group: str, message: dict) -> None:
    send = async_to_sync(get_channel_layer().group_send)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        send(group, message)
        return
    # This thread runs an event loop already (e.g. a sync API driven from asyncio):
    # async_to_sync refuses that, so send from a helper thread and wait for it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(send, group, message).result()


def publish_on_commit(deployment_id: int, render_fragments) -> None:
    """Render and publish after the surrounding transaction commits, never before.

    ``render_fragments`` is called after commit, so it renders committed state.
    A broadcast failure is logged, not raised: the change is already saved, and
    clients recover through the sequence gap or their polling fallback.
    """

    def _send():
        try:
            publish(deployment_id, render_fragments())
        except Exception:  # pragma: no cover - logged, state is safe in the database
            log.exception("live push for deployment %s failed", deployment_id)

    transaction.on_commit(_send)


def revoke_on_commit(deployment_id: int, user_id: int) -> None:
    """After commit, close every socket ``user_id`` holds on the deployment (they were removed)."""

    def _send():
        try:
            _group_send(viewer_group(deployment_id, user_id), {"type": "access.revoked"})
        except Exception:  # pragma: no cover - the next ping re-checks access anyway
            log.exception("closing sockets of user %s on deployment %s failed", user_id, deployment_id)

    transaction.on_commit(_send)
