"""What several benchmark cases need: servers, sessions, websocket clients, statistics."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def percentiles(samples_ms: list[float], prefix: str = "") -> dict:
    ordered = sorted(samples_ms)
    if not ordered:
        return {f"{prefix}p50_ms": None, f"{prefix}p99_ms": None, f"{prefix}max_ms": None}

    def pick(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        f"{prefix}p50_ms": round(statistics.median(ordered), 2),
        f"{prefix}p99_ms": pick(0.99),
        f"{prefix}max_ms": round(ordered[-1], 2),
    }


def child_env() -> dict:
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env["DATABASE_URL"] = urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path="/" + connection.settings_dict["NAME"]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LAST_SERVER: dict = {}  # the most recent web_server(): its master process id and log file


@contextmanager
def web_server(processes: int | None = None):
    """The web server as `make run` starts it (gunicorn + uvicorn, WARROOM_WEB_PROCESSES processes)."""
    from warroom import server

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-web-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        server.argv(sys.executable, "127.0.0.1", port, processes=processes),
        cwd=BASE_DIR,
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    LAST_SERVER.update(pid=proc.pid, log=log.name)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the web server did not start; see {log.name}") from None
                time.sleep(0.1)
        _wait_until_booted(port, proc.pid)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its children (the gunicorn master and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    pids = [pid, *(int(p) for p in children)]
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _wait_until_booted(port: int, pid: int, timeout: float = 60) -> None:
    """The master listens before its worker processes have imported Django: wait until the
    application answers and the processes have gone quiet, so no case measures a boot."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
            break
        except urllib.error.HTTPError:
            break  # an answer (503 while no Celery worker runs, as here) is what we wait for
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the web server did not answer /healthz")
        time.sleep(0.1)
    before = server_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = server_cpu_seconds(pid)
        if now - before < 0.02:  # under 8 % of a core for a quarter second: every process is up
            return
        before = now


def session_for(user) -> str:
    """A logged-in session without a password round trip."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


async def connect_clients(base_url: str, deployment_id: int, sessions: list[str]):
    import websockets

    url = base_url.replace("http://", "ws://") + f"/ws/deployments/{deployment_id}/"
    clients = []
    for sessionid in sessions:
        clients.append(
            await websockets.connect(
                url,
                additional_headers={"Cookie": f"sessionid={sessionid}", "Origin": base_url},
                max_size=None,
                ping_interval=None,  # hundreds of clients in one loop: the server's heartbeat is the liveness signal
            )
        )
    await drain(clients)
    return clients


async def drain(clients, quiet_seconds: float = 0.5):
    """Read and drop whatever is queued (presence pushes) until every client is quiet."""
    import websockets

    async def one(ws):
        while True:
            try:
                await asyncio.wait_for(ws.recv(), timeout=quiet_seconds)
            except TimeoutError:
                return
            except websockets.ConnectionClosed:
                return  # the case counts what a closed client missed

    await asyncio.gather(*(one(ws) for ws in clients))


def make_crew(n_clients: int, *, items: int = 50, label: str = "bench"):
    """A deployment with ``items`` checklist lines and ``n_clients`` QA participants."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from checklists.models import Runbook, RunbookVersion, TemplateItem, TemplatePhase, TemplateRole, TemplateStep
    from deployments import services

    User = get_user_model()
    lead, _ = User.objects.get_or_create(username=f"{label}-lead")
    lead.user_permissions.add(Permission.objects.get(content_type__app_label="deployments", codename="add_deployment"))
    lead = User.objects.get(pk=lead.pk)  # no stale permission cache
    runbook = Runbook.objects.create(name=f"{label} runbook")
    version = RunbookVersion.objects.create(runbook=runbook, number=1, title=f"{label} runbook")
    role = TemplateRole.objects.create(version=version, name="QA Lead")
    phase = TemplatePhase.objects.create(version=version, title="Phase")
    steps = max(1, items // 10)
    for s in range(steps):
        step = TemplateStep.objects.create(
            phase=phase,
            position=s,
            title=f"Step {s}",
            role=role,
            offset_minutes=s * 10,
            duration_min_minutes=5,
            duration_max_minutes=10,
        )
        TemplateItem.objects.bulk_create(TemplateItem(step=step, position=i, text=f"Item {s}.{i}") for i in range(items // steps))
    deployment = services.create_deployment(
        version,
        lead=lead,
        name=f"{label} deployment",
        service="bench",
        version_label="1",
        environment="bench",
        planned_t0=timezone.now() + timedelta(hours=1),
    )
    members = []
    for i in range(n_clients):
        user, _ = User.objects.get_or_create(username=f"{label}-user-{i}")
        services.set_participant(deployment, lead, user, role_names=["QA Lead"])
        members.append(user)
    return deployment, lead, members


@contextmanager
def celery_worker(name: str = "benchworker", concurrency: int = 2):
    """A real Celery worker process on the bench queue."""
    log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "warroom",
            "worker",
            "--loglevel",
            "WARNING",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=BASE_DIR,
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from warroom.celery import app

    try:
        deadline = time.monotonic() + 60
        while not any(name in key for reply in (app.control.ping(timeout=0.5) or []) for key in reply):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"celery worker did not start; see {log.name}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def celery_beat():
    """Celery beat with its own schedule file: drives the rollout controller's ticks."""
    workdir = tempfile.mkdtemp(prefix="bench-beat-")
    log = open(os.path.join(workdir, "beat.log"), "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "warroom",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            os.path.join(workdir, "schedule"),
        ],
        cwd=BASE_DIR,
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
