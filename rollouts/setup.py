"""Setting up targets and step actions (admins and seed_demo), validated like the admin would."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.conf import settings
from django.db import transaction

from checklists.models import TemplateStep
from rollouts.actions import validate_action
from rollouts.demo import SECRET_ENV, demo_plan
from rollouts.models import DEMO_ROUTER, DEMO_SOURCE, MetricSource, MetricSourceKind, Router, RouterKind, Target


@transaction.atomic
def set_step_action(step: TemplateStep, action: str, config: dict | None = None) -> TemplateStep:
    config = config or {}
    validate_action(action, config)
    step = TemplateStep.objects.select_for_update().get(pk=step.pk)
    step.action, step.action_config = action, config
    step.save(update_fields=["action", "action_config"])
    return step


def save_target(target: Target) -> Target:
    target.full_clean()
    target.save()
    return target


def ensure_demo_target(*, base_url: str) -> Target:
    """A real database next to Warroom's own, with data in it, for the demo's backup and smoke steps."""
    parts = urlsplit(settings.DATABASE_URL)
    name = (parts.path.lstrip("/") or "warroom") + "_demo_target"
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    url = urlunsplit(parts._replace(path="/" + name))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS accounts "
            "(id serial PRIMARY KEY, owner text NOT NULL, created_at timestamptz DEFAULT now())"
        )
        if not conn.execute("SELECT count(*) FROM accounts").fetchone()[0]:
            conn.execute("INSERT INTO accounts (owner) SELECT 'customer ' || g FROM generate_series(1, 2000) g")
    secret_file = Path(settings.WARROOM_BACKUP_DIR).parent / "demo-target.url"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text(url + "\n")
    secret_file.chmod(0o600)

    target = Target.objects.filter(name="demo").first() or Target(name="demo")
    target.description = "Demo system: its own database in the embedded PostgreSQL, Warroom's health URL"
    target.database_url_file = str(secret_file)
    target.base_url = base_url
    target.migrate_argv = [sys.executable, "-m", "rollouts.demo_migration"]
    target.migrate_cwd = str(settings.BASE_DIR)
    target.migrate_env = {"DATABASE_URL": "@database_url"}
    target.maintenance_file = str(Path(settings.WARROOM_BACKUP_DIR).parent / "demo-maintenance.flag")
    target.backup_keep = 5
    target.verify_restore = True
    return save_target(target)


DEMO_ROLLOUT_STEP = "Step 2.3"

DEMO_ACTIONS = {
    "Step 1.1": ("backup", {}),
    "Step 2.1": ("maintenance_on", {}),
    "Step 2.2": ("migrate", {}),
    "Step 2.4": (
        "smoke",
        {
            "checks": [
                {
                    "type": "http",
                    "name": "Warroom health",
                    "url": "{base_url}/healthz",
                    "expect_status": 200,
                    "json_path": "checks.database.ok",
                    "expect_value": True,
                    "max_ms": 2000,
                },
                {"type": "sql", "name": "accounts table has rows", "query": "SELECT count(*) FROM accounts", "expect_min": 1},
                {"type": "sql", "name": "migration applied", "query": "SELECT count(*) FROM schema_migrations", "expect_min": 1},
            ]
        },
    ),
    "Step 2.5": ("maintenance_off", {}),
}


def ensure_demo_rollout_definitions(*, base_url: str) -> tuple[Router, MetricSource]:
    """What an administrator would define for the demo: its router and its metrics, both inside Warroom."""
    router = Router.objects.filter(name=DEMO_ROUTER).first() or Router(name=DEMO_ROUTER)
    router.kind, router.url, router.secret_env = RouterKind.WEBHOOK, f"{base_url}/demo/router", SECRET_ENV
    router.description = "The demo's pretend load balancer (HMAC-signed webhook inside Warroom)"
    router.full_clean()
    router.save()
    source = MetricSource.objects.filter(name=DEMO_SOURCE).first() or MetricSource(name=DEMO_SOURCE)
    source.kind, source.url = MetricSourceKind.HTTP_JSON, f"{base_url}/demo/metrics"
    source.description = "The demo's pretend production metrics"
    source.full_clean()
    source.save()
    return router, source


def apply_demo_actions(version, *, base_url: str) -> None:
    ensure_demo_rollout_definitions(base_url=base_url)
    actions = {**DEMO_ACTIONS, DEMO_ROLLOUT_STEP: ("rollout", demo_plan())}
    for step in TemplateStep.objects.filter(phase__version=version):
        for prefix, (action, config) in actions.items():
            if step.title.startswith(prefix) and step.action != action:
                set_step_action(step, action, config)
