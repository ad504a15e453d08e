"""Live pushes to every screen watching a deployment.

One Channels group per deployment. A push carries a per-deployment sequence number
(an atomic Redis counter, shared by web and worker processes) and HTML fragments
rendered from the same template partials as the page; htmx swaps them out of band.
A client that sees a gap in the numbers, or reconnects, re-fetches the board.
"""

from __future__ import annotations

import asyncio
import logging
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


def current_seq(deployment_id: int) -> int:
    return int(redis_client().get(f"warroom:seq:{deployment_id}") or 0)


def seq_marker(seq: int) -> str:
    return f'<div id="live-seq" hx-swap-oob="true" data-seq="{seq}" hidden></div>'


def publish(deployment_id: int, fragments: list[str]) -> int:
    """Send fragments to every subscriber now. Returns the sequence number used."""
    seq = redis_client().incr(f"warroom:seq:{deployment_id}")
    html = seq_marker(seq) + "".join(fragments)
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
