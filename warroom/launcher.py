"""`make run`: services, migrations, demo data, then the ASGI server, a Celery worker and beat.

Runs everything in the foreground and stops every child on Ctrl-C (or SIGTERM), so
a second `make run` starts clean. If one child dies, the others are stopped too:
a war room with no worker must not look healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from warroom import embedded, server

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STOP_GRACE_SECONDS = 10


def _embedded_running() -> dict[str, bool]:
    return {
        "postgres": (embedded.PG_DIR / "postmaster.pid").exists(),
        "redis": embedded._redis_alive(embedded._redis_port()),
    }


def _manage(*args: str) -> None:
    subprocess.run([PYTHON, str(BASE_DIR / "manage.py"), *args], check=True, cwd=BASE_DIR)


def _start(name: str, argv: list[str]) -> subprocess.Popen:
    print(f"[run] starting {name}: {' '.join(argv)}", flush=True)
    # Own process group, so stopping it stops its children too (celery's pool).
    return subprocess.Popen(argv, cwd=BASE_DIR, start_new_session=True)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    for name, proc in children.items():
        if proc.poll() is None:
            print(f"[run] stopping {name}", flush=True)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warroom.settings")
    uses_embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    embedded_database = not os.environ.get("DATABASE_URL")
    was_running = _embedded_running() if uses_embedded else {}
    embedded.ensure_environment()
    # Two database roles (warroom/dbroles.py): migrations and set-up as the owner, the
    # web server, worker and beat as the application role, which owns nothing.
    owner_url = os.environ.get("WARROOM_OWNER_DATABASE_URL", "")
    app_url = os.environ["DATABASE_URL"]
    if embedded_database:
        owner_url, app_url = embedded.ensure_roles()
    host = os.environ.get("WARROOM_HOST", "127.0.0.1")
    port = os.environ.get("WARROOM_PORT", "8000")
    password = os.environ.get("WARROOM_DEMO_PASSWORD", "warroom-demo")
    # Beat ticks the rollout controller twice a second: at INFO that is several lines a second.
    celery_level = os.environ.get("WARROOM_CELERY_LOG_LEVEL", "WARNING")

    if owner_url:
        os.environ["DATABASE_URL"] = owner_url
    _manage("migrate", "--noinput")
    if owner_url:
        _manage("setup_db_roles")
    _manage("ensure_signing_identity")  # a self-signed report-signing pair on first start, and says so
    _manage("seed_demo", "--password", password)
    os.environ["DATABASE_URL"] = app_url  # everything started from here on

    run_dir = embedded.RUN_DIR
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def _on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        processes = server.web_processes()
        children["web"] = _start(f"web (gunicorn, {processes} uvicorn processes)", server.argv(PYTHON, host, port))
        children["worker"] = _start(
            "worker (celery)",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "warroom",
                "worker",
                "--loglevel",
                celery_level,
                "--concurrency",
                os.environ.get("WARROOM_WORKER_CONCURRENCY", "2"),
                "--hostname",
                "worker@%h",
            ],
        )
        children["beat"] = _start(
            "beat (celery)",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "warroom",
                "beat",
                "--loglevel",
                celery_level,
                "--schedule",
                str(run_dir / "celerybeat-schedule"),
                "--pidfile",
                "",
            ],
        )
        print(
            f"\n[run] Warroom is at http://{host}:{port}/  (health: http://{host}:{port}/healthz)\n"
            f"[run] Demo logins (password {password!r}): lead, po, qa, devops, dba, outsider\n"
            "[run] Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        exit_code = 0
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(f"[run] {name} exited with code {proc.returncode}; stopping the rest", flush=True)
                    exit_code = 1
                    stopping = True
                    break
            time.sleep(0.3)
        return exit_code
    finally:
        _stop(children)
        if uses_embedded and not any(was_running.values()):
            print("[run] stopping the embedded PostgreSQL and Redis this run started", flush=True)
            embedded.stop()
        print("[run] stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(run())
