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
import atexit
import logging
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, transaction

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
        return _position(deployment_id, advance=False)
    except redis.RedisError:
        return "", 0


def _position(deployment_id: int, *, advance: bool) -> tuple[str, int]:
    """The epoch (made when missing) and the counter, read — or moved on by one — in one round trip."""
    pipe = redis_client().pipeline(transaction=True)
    pipe.set(EPOCH_KEY, _new_epoch(), nx=True)
    pipe.get(EPOCH_KEY)
    pipe.incr(_seq_key(deployment_id)) if advance else pipe.get(_seq_key(deployment_id))
    _, epoch, seq = pipe.execute()
    return epoch.decode(), int(seq or 0)


def _marker(element_id: str, epoch: str, seq: int) -> str:
    return f'<div id="{element_id}" hx-swap-oob="true" data-epoch="{epoch}" data-seq="{seq}" hidden></div>'


def seq_marker(epoch: str, seq: int) -> str:
    return _marker("live-seq", epoch, seq)


def beat_marker(epoch: str, seq: int) -> str:
    """The server's heartbeat: says the path from Redis to this screen works, and where the numbers are."""
    return _marker("live-beat", epoch, seq)


def publish(deployment_id: int, fragments: list[str], *, loop: asyncio.AbstractEventLoop | None = None) -> int:
    """Send fragments to every subscriber now. Returns the sequence number used.

    ``loop``: an event loop this thread keeps (the publisher's), so the channel layer's Redis
    connection is opened once and reused rather than once per push."""
    epoch, seq = _position(deployment_id, advance=True)
    html = seq_marker(epoch, seq) + "".join(fragments)
    message = {"type": "board.push", "seq": seq, "html": html}
    if loop is not None:
        loop.run_until_complete(get_channel_layer().group_send(group_name(deployment_id), message))
    else:
        _group_send(group_name(deployment_id), message)
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
    """Render and publish after the surrounding transaction commits, never before — and
    off the request thread: the person who acted gets their answer as soon as the commit
    is done, and a burst of changes (fifty people pressing GO) is rendered once per
    part, not once per request.

    ``render_fragments`` is called after commit, so it renders committed state. Calls
    that render the same thing (the same function with the same captured values) in one
    burst are rendered once. A broadcast failure is logged, not raised: the change is
    already saved, and clients recover through the heartbeat, a gap or their polling.
    """
    # robust: a failure to queue the push is logged, never raised into a change already committed
    transaction.on_commit(lambda: publisher.submit(deployment_id, render_fragments), robust=True)


def _render_key(render):
    """Two renderers are the same if they are the same code over the same captured values."""
    try:
        cells = tuple(c.cell_contents for c in (render.__closure__ or ()))
        key = (render.__code__, cells, render.__defaults__)
        hash(key)
    except (AttributeError, TypeError, ValueError):
        return id(render)
    return key


class Publisher:
    """One per process: a daemon thread that renders and publishes what commits asked for.

    Pending renderers are kept per deployment, in order, without repeats; the thread takes
    everything pending at once, renders each deployment's parts and sends them as one push
    with one sequence number.

    A deployment's next push waits until its last render's cost, times ``RENDER_SPACING``,
    has passed (between ``MIN_SPACING_SECONDS`` and ``MAX_SPACING_SECONDS``): the first change after a quiet spell goes
    out at once, while fifty votes in one second are rendered a handful of times instead of
    fifty, so rendering never takes more than a fraction of the process from the people
    acting. Nothing is dropped: what arrives meanwhile is in the next push.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[int, dict] = {}
        self._not_before: dict[int, float] = {}  # deployment -> monotonic time its next render may start
        self._flushing = 0  # callers waiting in flush(): spacing is skipped for them
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = None
        self._pid = None

    def submit(self, deployment_id: int, render) -> None:
        """``render``: a callable returning fragments. One with a ``merge_key`` and a
        ``merge(other)`` merges with the one of the same key already waiting (a burst of
        ticks: one render of every line they touched)."""
        key = getattr(render, "merge_key", None) or _render_key(render)
        with self._lock:
            waiting = self._pending.setdefault(deployment_id, {})
            if key in waiting and hasattr(render, "merge"):
                waiting[key] = waiting[key].merge(render)
            else:
                waiting.setdefault(key, render)
            self._idle.clear()
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # First use in this process (or after a fork): start the thread here.
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self, timeout: float = 10) -> bool:
        """Wait until everything submitted so far is published (tests, commands before exit).
        Someone is waiting, so what waits for its spacing goes out now."""
        with self._lock:
            self._flushing += 1
        self._wake.set()
        try:
            return self._idle.wait(timeout)
        finally:
            with self._lock:
                self._flushing -= 1

    def _take_due(self) -> tuple[dict[int, dict], float | None]:
        """The pending deployments whose spacing has passed, and how long until the next one's has."""
        now = time.monotonic()
        with self._lock:
            due = {d: r for d, r in self._pending.items() if self._flushing or self._not_before.get(d, 0.0) <= now}
            for deployment_id in due:
                del self._pending[deployment_id]
            waits = [self._not_before[d] - now for d in self._pending if d in self._not_before]
            if not self._pending:
                self._not_before = {d: t for d, t in self._not_before.items() if t > now}  # forget quiet ones
        return due, (min(waits) if waits else None)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()  # this thread's own, kept: one channel-layer connection per process
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(COALESCE_SECONDS)  # let the rest of a burst arrive
            while True:
                due, wait = self._take_due()
                for deployment_id, renders in due.items():
                    started = time.monotonic()
                    try:
                        fragments = [fragment for render in renders.values() for fragment in render()]
                        publish(deployment_id, fragments, loop=loop)
                    except Exception:  # logged; state is safe in the database
                        log.exception("live push for deployment %s failed", deployment_id)
                    finished = time.monotonic()
                    spacing = min(MAX_SPACING_SECONDS, max(MIN_SPACING_SECONDS, (finished - started) * RENDER_SPACING))
                    with self._lock:
                        self._not_before[deployment_id] = finished + spacing
                close_old_connections()
                if wait is None and not due:
                    break
                if wait is not None and not due:
                    self._wake.wait(wait)  # another deployment's first push need not wait for this spacing
                    self._wake.clear()
            with self._lock:
                if not self._pending:
                    self._idle.set()
                else:
                    self._wake.set()


COALESCE_SECONDS = 0.005
RENDER_SPACING = 2  # a deployment's renders take at most a third of the publisher's time
MIN_SPACING_SECONDS = 0.02  # and come at most fifty times a second
MAX_SPACING_SECONDS = 0.25
publisher = Publisher()
# Before the interpreter shuts its thread pools down (async_to_sync needs one), let what a
# short-lived process (a management command, a task) committed go out. Hooks of this kind run
# last-registered first, so this one runs before concurrent.futures' own.
_register_shutdown = getattr(threading, "_register_atexit", atexit.register)
_register_shutdown(publisher.flush, 5)


def revoke_on_commit(deployment_id: int, user_id: int) -> None:
    """After commit, close every socket ``user_id`` holds on the deployment (they were removed)."""

    def _send():
        try:
            _group_send(viewer_group(deployment_id, user_id), {"type": "access.revoked"})
        except Exception:  # pragma: no cover - the next ping re-checks access anyway
            log.exception("closing sockets of user %s on deployment %s failed", user_id, deployment_id)

    transaction.on_commit(_send, robust=True)
