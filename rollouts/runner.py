"""The machinery under every automated step: log batching, heartbeats, cancel, secrets.

A RunContext belongs to one claimed TaskRun inside the Celery task. Log lines are
masked, numbered, stored in batches and pushed to the war room in batches (every
``FLUSH_SECONDS`` or ``FLUSH_LINES``), so a chatty process neither floods Redis nor
freezes a browser. A heartbeat thread proves the worker is alive and notices a
cancel request; subprocesses run as argv lists, never through a shell.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.html import escape

from deployments import live
from rollouts.models import RunState, TaskLogLine, TaskRun

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
FLUSH_LINES = 2000
TAIL_LINES = 200
MASK = "••••"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?P<at>@)", re.I)


class RunCancelled(Exception):
    pass


class RunTimedOut(Exception):
    pass


class ActionFailed(Exception):
    """The action did not succeed; the message says why in words (shown in the war room)."""


def secrets_in_url(url: str) -> list[str]:
    parts = urlsplit(url)
    return [parts.password] if parts.password else []


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    # Any password in any URL, even one we were not told about.
    return _URL_PASSWORD.sub(lambda m: m.group("scheme") + MASK + m.group("at"), text)


# The only variables of Warroom's own environment a child process sees: enough to find
# programs and to print text. Secrets (DATABASE_URL, REDIS_URL, router and signing
# secrets) never leak into a target's commands; what a command needs, its target defines.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra or {})
    return env


@dataclass
class RunContext:
    run: TaskRun
    secrets: list[str] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)
    _tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    _seq: int = 0
    _last_flush: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen | None = None

    # --- logging -------------------------------------------------------------------------

    def log(self, line: str) -> None:
        line = mask(line.rstrip("\n"), self.secrets)
        with self._lock:
            self._pending.append(line)
            due = len(self._pending) >= FLUSH_LINES or time.monotonic() - self._last_flush >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if not lines:
                return
            first = self._seq + 1
            self._seq += len(lines)
            self._tail.extend(lines)
            tail = "\n".join(self._tail)
            count = self._seq
        TaskLogLine.objects.bulk_create(TaskLogLine(run_id=self.run.pk, seq=first + i, text=text) for i, text in enumerate(lines))
        TaskRun.objects.filter(pk=self.run.pk).update(log_line_count=count, log_tail=tail)
        push_log_lines(self.run, first, lines)

    # --- heartbeat and cancel --------------------------------------------------------------

    def start_heartbeat(self) -> None:
        threading.Thread(target=self._beat, name=f"heartbeat-run-{self.run.pk}", daemon=True).start()

    def _beat(self) -> None:
        interval = settings.WARROOM_RUN_HEARTBEAT_SECONDS
        try:
            while not self._stop.wait(interval):
                TaskRun.objects.filter(pk=self.run.pk, state=RunState.RUNNING).update(heartbeat_at=timezone.now())
                if TaskRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
                    self.cancelled.set()
                    self.terminate()
                if self._pending and time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                    self.flush()  # a quiet process still gets its last lines out
        finally:
            close_old_connections()

    def stop(self) -> None:
        self._stop.set()
        self.flush()

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise RunCancelled("Cancelled")

    # --- subprocesses -----------------------------------------------------------------------

    def run_process(
        self, argv: list[str], *, env: dict | None = None, cwd: str | None = None, timeout: float | None = None
    ) -> int:
        """Run argv (no shell), streaming each output line to the log. Returns the exit code.

        The child sees ``child_environment(env)``: a few neutral variables plus ``env``.
        """
        self.check_cancelled()
        self.log("$ " + " ".join(argv))
        try:
            self.process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(env),
                cwd=cwd or None,
                start_new_session=True,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except FileNotFoundError:
            raise ActionFailed(f"Program not found: {argv[0]}") from None
        except PermissionError:
            raise ActionFailed(f"Not allowed to run {argv[0]}") from None
        except NotADirectoryError:
            raise ActionFailed(f"Working directory does not exist: {cwd}") from None
        deadline = time.monotonic() + timeout if timeout else None
        timed_out = threading.Event()

        def watchdog():
            while self.process.poll() is None:
                if deadline and time.monotonic() > deadline:
                    timed_out.set()
                    self.terminate()
                    return
                time.sleep(0.2)

        threading.Thread(target=watchdog, daemon=True).start()
        for line in self.process.stdout:
            self.log(line)
        code = self.process.wait()
        self.flush()
        if timed_out.is_set():
            raise RunTimedOut(f"Timed out after {timeout:.0f} s")
        self.check_cancelled()
        return code

    def terminate(self) -> None:
        """SIGTERM the process group, then SIGKILL after the grace period."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=settings.WARROOM_RUN_KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.log(f"[warroom] still running {settings.WARROOM_RUN_KILL_GRACE_SECONDS} s after SIGTERM: SIGKILL")
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def push_log_lines(run: TaskRun, first_seq: int, lines: list[str]) -> None:
    """Append a batch of log lines on every screen (the page keeps a bounded tail).

    The lines are stored before this is called: a push that fails (Redis restarting, the
    channel layer down) is logged and the run goes on — its outcome is the command's, never
    the screens'. Screens that missed the push see the gap in the numbers and fetch the log.
    """
    text = escape("\n".join(lines) + "\n")
    fragment = f'<pre hx-swap-oob="beforeend:#run-{run.pk}-log" data-first="{first_seq}" data-count="{len(lines)}">{text}</pre>'
    try:
        live.publish(run.deployment_id, [fragment])
    except Exception:
        log.warning("log lines %s+ of run %s not pushed", first_seq, run.pk, exc_info=True)
