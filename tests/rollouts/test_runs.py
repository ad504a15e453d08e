"""Automated steps for real: pg_dump/pg_restore, a migration, smoke checks, cancel, a dying worker."""

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis
from django.core.exceptions import ValidationError

from checklists.models import StepAction
from deployments import live
from deployments.events import verify_chain
from deployments.models import Event, Item, Step
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from rollouts import runs
from rollouts.actions import validate_action
from rollouts.models import RunState, TaskLogLine, TaskRun
from tests.conftest import start_worker
from tests.rollouts.conftest import TARGET_PASSWORD
from tests.rollouts.helpers import step_with_action, wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)


def _add_item(step, text):
    return Item.objects.create(deployment=step.deployment, step=step, text=text, position=99)


def test_backup_for_real_verified_and_proving_its_items(crew, celery_worker, target_db, make_target):
    deployment, people = crew
    target = make_target(target_db, verify_restore=True)
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.BACKUP)
    proves = _add_item(step, "Backup file exists and size > 0")
    integrity = _add_item(step, "Backup integrity verified (optional: test restore in separate database)")
    unrelated = _add_item(step, "Tell the CFO")

    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)

    assert run.state == RunState.SUCCEEDED, run.error
    dump = Path(run.result["path"])
    assert dump.exists() and dump.stat().st_size == run.result["size_bytes"] > 0
    assert hashlib.sha256(dump.read_bytes()).hexdigest() == run.result["sha256"]
    listing = subprocess.run(
        [runs.actions.pg_tool("pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=True
    )
    assert "TABLE DATA public accounts" in listing.stdout
    assert run.result["restore_check"]["ok"] and run.result["restore_check"]["tables"]["public.accounts"] == 3000
    for item in (proves, integrity):
        item.refresh_from_db()
        assert item.checked and item.done_by_system == f"Task run #{run.pk}" and run.result["sha256"] in item.note
    unrelated.refresh_from_db()
    assert not unrelated.checked
    log = "\n".join(TaskLogLine.objects.filter(run=run).values_list("text", flat=True))
    assert "pg_dump" in log and TARGET_PASSWORD not in log
    actions = list(Event.objects.filter(deployment=deployment, object_type="taskrun").values_list("action", flat=True))
    assert actions == ["run.queued", "run.started", "run.succeeded"]
    assert verify_chain(deployment.pk).ok


def test_retention_keeps_the_last_n(crew, celery_worker, target_db, make_target):
    deployment, people = crew
    target = make_target(target_db, backup_keep=2)
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.BACKUP)
    paths = []
    for _ in range(3):
        run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
        assert run.state == RunState.SUCCEEDED, run.error
        paths.append(Path(run.result["path"]))
        time.sleep(1.1)  # distinct timestamps in the file names
    assert [p.exists() for p in paths] == [False, True, True]


def test_migration_really_changes_the_database_and_secrets_are_masked(crew, celery_worker, target_db, make_target):
    deployment, people = crew
    target = make_target(
        target_db,
        migrate_argv=[
            sys.executable,
            "-c",
            "import os, runpy; print('connecting to', os.environ['DATABASE_URL']); "
            "runpy.run_module('rollouts.demo_migration', run_name='__main__')",
        ],
        migrate_env={"DATABASE_URL": "@database_url"},
        migrate_cwd=str(Path(__file__).parents[2]),
    )
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.MIGRATE)
    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
    assert run.state == RunState.SUCCEEDED, run.error
    assert run.exit_code == 0
    with psycopg.connect(target_db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 2
        conn.execute("SELECT count(*) FROM expense_accounts").fetchone()
    log = "\n".join(TaskLogLine.objects.filter(run=run).values_list("text", flat=True))
    assert "connecting to postgresql://" in log and "••••@" in log
    assert TARGET_PASSWORD not in log and TARGET_PASSWORD not in run.log_tail
    assert not Event.objects.filter(deployment=deployment, summary__contains=TARGET_PASSWORD).exists()
    assert "✓ Applied migration: 0001_expense_accounts" in log


def test_failing_migration_fails_with_its_exit_code(crew, celery_worker, make_target):
    deployment, people = crew
    target = make_target(migrate_argv=[sys.executable, "-c", "import sys; print('relation exists'); sys.exit(3)"])
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.MIGRATE)
    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
    assert run.state == RunState.FAILED and run.exit_code == 3
    assert run.error == "The migration command exited with code 3"


def test_a_run_keeps_its_outcome_when_its_log_cannot_reach_the_screens(crew, make_target, monkeypatch):
    """Redis drops every push while the migration runs (here it raises at once): the run
    still ends as the command did, with its exit code and every line stored."""
    deployment, people = crew
    target = make_target(migrate_argv=[sys.executable, "-c", "import sys; print('relation exists'); sys.exit(3)"])
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.MIGRATE)
    monkeypatch.setattr(runs.tasks.execute_run_task, "apply_async", lambda **kwargs: None)  # run it here, not in a worker

    def redis_gone(*args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to Redis: Connection refused.")

    monkeypatch.setattr(live, "publish", redis_gone)
    run = runs.start_run(step.pk, people["devops"])
    assert runs.execute_run(run.pk) == RunState.FAILED
    run.refresh_from_db()
    assert (run.state, run.exit_code, run.error) == (RunState.FAILED, 3, "The migration command exited with code 3")
    assert "relation exists" in TaskLogLine.objects.filter(run=run).values_list("text", flat=True)


def test_smoke_checks_against_a_real_http_server_and_database(crew, celery_worker, http_service, target_db, make_target):
    deployment, people = crew
    target = make_target(target_db, base_url=http_service)
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(
        deployment,
        StepAction.SMOKE,
        {
            "checks": [
                {"type": "http", "name": "health", "url": "{base_url}/health", "json_path": "db.ok", "expect_value": True},
                {"type": "http", "name": "slow page", "url": "{base_url}/slow", "expect_text": "fine", "max_ms": 5000},
                {"type": "sql", "name": "accounts", "query": "SELECT count(*) FROM accounts", "expect": 3000},
            ]
        },
    )
    smoke_item = _add_item(step, "Smoke tests pass")
    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
    assert run.state == RunState.SUCCEEDED, run.error
    assert [c["ok"] for c in run.result["checks"]] == [True, True, True]
    smoke_item.refresh_from_db()
    assert smoke_item.checked

    step = step_with_action(
        deployment,
        StepAction.SMOKE,
        {
            "checks": [
                {"type": "http", "name": "broken", "url": "{base_url}/broken"},
                {"type": "http", "name": "too slow", "url": "{base_url}/slow", "max_ms": 1},
                {"type": "sql", "name": "count", "query": "SELECT count(*) FROM accounts", "expect": 1},
            ]
        },
        title="Step 2",
    )
    run = wait_for_run(runs.start_run(step.pk, people["qa"]).pk)
    assert run.state == RunState.FAILED
    details = {c["name"]: c["detail"] for c in run.result["checks"]}
    assert details["broken"] == "status 500, expected 200"
    assert "budget 1 ms" in details["too slow"]
    assert details["count"] == "got 3000, expected 1"
    assert run.error.startswith("3 of 3 smoke checks failed")


def test_unreachable_database_fails_in_words(crew, celery_worker, make_target):
    deployment, people = crew
    target = make_target("postgresql://nobody:pw@127.0.0.1:1/none")
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.BACKUP)
    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
    assert run.state == RunState.FAILED
    assert run.error.startswith("Cannot connect to 127.0.0.1:1 after 3 tries")
    assert "Traceback" not in run.error and "pw@" not in run.error


def test_cancel_stops_the_process(crew, celery_worker, make_target):
    deployment, people = crew
    target = make_target(commands={"long-job": ["sleep", "120"]})
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.COMMAND, {"command": "long-job"})
    run = runs.start_run(step.pk, people["devops"])
    wait_for_run(run.pk, states=(RunState.RUNNING,))
    time.sleep(0.5)
    runs.cancel_run(run.pk, people["devops"])
    run = wait_for_run(run.pk, timeout=20)
    assert run.state == RunState.CANCELLED
    assert subprocess.run(["pgrep", "-f", "sleep 120"], capture_output=True, check=False).returncode == 1  # nothing left running


def test_worker_killed_mid_run_becomes_lost_and_is_never_run_twice(crew, process_env, tmp_path, make_target, settings):
    deployment, people = crew
    target = make_target(commands={"long-job": ["sleep", "30"]})
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.COMMAND, {"command": "long-job"})
    worker = start_worker(process_env, tmp_path / "doomed.log", name="doomed", concurrency=1)
    try:
        run = runs.start_run(step.pk, people["devops"])
        wait_for_run(run.pk, states=(RunState.RUNNING,))
        worker.send_signal(signal.SIGKILL)  # no warm shutdown: the process is simply gone
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert TaskRun.objects.get(pk=run.pk).state == RunState.RUNNING  # nobody has noticed yet
    deadline = time.monotonic() + 30
    while runs.reap_lost_runs() == 0:
        assert time.monotonic() < deadline, "the reaper never marked the run lost"
        time.sleep(0.5)
    run.refresh_from_db()
    assert run.state == RunState.LOST and "worker died" in run.error
    assert Event.objects.filter(deployment=deployment, action="run.lost").count() == 1
    # A redelivered task finds nothing to claim.
    assert runs.execute_run(run.pk) == "not-claimed"
    run.refresh_from_db()
    assert run.state == RunState.LOST and run.attempt == 1
    subprocess.run(["pkill", "-f", "sleep 30"], check=False)


def test_start_run_permissions_and_definitions(crew, make_target):
    deployment, people = crew
    step = step_with_action(deployment, StepAction.BACKUP)  # a DevOps step
    with pytest.raises(InvalidChange, match="No target is bound"):
        runs.start_run(step.pk, people["devops"])
    runs.bind_target(deployment, people["lead"], make_target("postgresql://x@127.0.0.1:1/x"))
    with pytest.raises(PermissionDenied):
        runs.start_run(step.pk, people["qa"])

    with pytest.raises(Step.DoesNotExist):
        runs.start_run(step.pk, people["outsider"])
    plain = Item.objects.get(deployment=deployment, text="Smoke tests").step
    with pytest.raises(InvalidChange, match="no automated action"):
        runs.start_run(plain.pk, people["lead"])
    assert not TaskRun.objects.exists()


@pytest.mark.parametrize(
    ("action", "config", "message"),
    [
        ("reboot", {}, "Unknown action 'reboot'"),
        ("command", {}, "names an admin-defined command"),
        ("smoke", {"checks": []}, 'need "checks"'),
        ("smoke", {"checks": [{"type": "http", "url": "not a url"}]}, "a smoke check names a path on its target"),
        ("smoke", {"checks": [{"type": "ftp"}]}, 'checks[1].type must be "http" or "sql"'),
    ],
)
def test_bad_step_actions_are_refused_naming_the_field(action, config, message):
    with pytest.raises(ValidationError) as caught:
        validate_action(action, config)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"database_url_env": "NO_SUCH_VARIABLE_HERE"}, "database_url_env", "NO_SUCH_VARIABLE_HERE is not set"),
        ({"migrate_argv": "npx prisma migrate deploy"}, "migrate_argv", "argv list"),
        ({"commands": {"restart": "systemctl restart app"}}, "commands", "argv list"),
        ({"migrate_env": {"DB": "$NOT_SET_ANYWHERE"}}, "migrate_env", "NOT_SET_ANYWHERE"),
    ],
)
def test_bad_targets_are_refused_naming_the_field(make_target, fields, field, message):
    with pytest.raises(ValidationError) as caught:
        make_target(**fields)
    assert field in caught.value.message_dict and message in " ".join(caught.value.message_dict[field])
