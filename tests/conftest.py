"""Shared fixtures: personas, a staffed deployment, and real server processes.

``asgi_server`` and ``celery_worker`` start the real web server and Celery processes
against the test database; tests that use them need ``transaction=True`` so the
processes can see committed rows. They are started per test: the flush between
transactional tests recreates content types under new ids, which a long-lived
server process would still have cached.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.urls import clear_url_caches

import rollouts.urls
import warroom.urls
from deployments import live
from deployments.live import redis_client
from tests.factories import make_deployment, make_user, staff_deployment
from warroom import server
from warroom.celery import app

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _clean_test_redis():
    redis_client().flushdb()
    yield


@pytest.fixture
def crew(db):
    """A deployment with lead, product owner, QA lead, DevOps, DBA, observer, and an outsider."""
    lead = make_user("lead")
    deployment = make_deployment(lead=lead)
    people = staff_deployment(deployment, lead)
    live.publisher.flush()  # the set-up's own pushes are out before a test starts listening
    yield deployment, people
    live.publisher.flush()  # and the test's own are out before its rows are gone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} within {timeout}s")


@pytest.fixture(scope="session")
def process_env(django_db_setup):
    """Environment for child processes: the same settings, pointed at the test database."""
    url = urlsplit(settings.DATABASE_URL)
    env = dict(os.environ)
    env["DATABASE_URL"] = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    env["PYTHONUNBUFFERED"] = "1"
    env["WARROOM_LIVE_BEAT_SECONDS"] = "2"  # screens notice silence within 5 s, not 25
    return env


def _terminate(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(env, log_dir: Path, *, processes: int = 1):
    """The real web server (gunicorn + uvicorn, as `make run` and the image serve it) on a free
    port; yields its base URL."""
    port = free_port()
    log = (log_dir / f"web-{port}.log").open("w")
    proc = subprocess.Popen(
        server.argv(sys.executable, "127.0.0.1", port, processes=processes),
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        _terminate(proc)


@pytest.fixture
def asgi_server(process_env, tmp_path_factory):
    with serving(process_env, tmp_path_factory.mktemp("web")) as url:
        yield url


@pytest.fixture
def second_asgi_server(process_env, tmp_path_factory):
    """Another web server process on the same database and Redis: what a second machine would be."""
    with serving(process_env, tmp_path_factory.mktemp("web2")) as url:
        yield url


def start_worker(env, log_path, *, name="testworker", concurrency=2, extra=()):
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "warroom",
            "worker",
            "--loglevel",
            "INFO",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            *extra,
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited early; see {log_path}")
        replies = app.control.ping(timeout=0.5) or []
        if any(name in key for reply in replies for key in reply):
            return proc
    _terminate(proc)
    raise RuntimeError(f"celery worker did not answer within 60 s; see {log_path}")


@pytest.fixture
def celery_worker(process_env, tmp_path_factory):
    """A real Celery worker process consuming the test queue."""
    proc = start_worker(process_env, tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        yield proc
    finally:
        _terminate(proc)


def _reload_urls():
    importlib.reload(rollouts.urls)
    importlib.reload(warroom.urls)
    clear_url_caches()


@pytest.fixture
def demo_on(settings):
    """The demo's routes (/demo/…), which exist only when WARROOM_DEMO is on (as under `make run`)."""
    settings.WARROOM_DEMO = True
    _reload_urls()
    yield
    settings.WARROOM_DEMO = False
    _reload_urls()
