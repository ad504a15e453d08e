"""Warroom's application database role cannot rewrite history.

These tests connect to the test database as a real application role (created here,
granted by ``setup_db_roles`` exactly as ``make run`` and compose do) and try what an
attacker holding Warroom's database connection would: forge or reorder events,
TRUNCATE, disable the triggers, UPDATE or DELETE the log.
"""

from __future__ import annotations

import secrets

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from deployments.events import event_hash
from deployments.models import Deployment
from warroom import dbroles

pytestmark = pytest.mark.django_db(transaction=True)

APP_ROLE = "warroom_test_app"
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture
def app_db(crew):
    """A connection to the test database as the application role, and the deployment."""
    deployment, _ = crew
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("the test database user cannot create roles")
        if not dbroles.role_exists(cursor, APP_ROLE):
            cursor.execute(f'CREATE ROLE "{APP_ROLE}" LOGIN')
        cursor.execute(
            psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(psycopg.sql.Identifier(APP_ROLE), PASSWORD).as_string()
        )
    call_command("setup_db_roles", app_role=APP_ROLE)
    params = connection.get_connection_params()
    conn = psycopg.connect(
        host=params.get("host"),
        port=params.get("port"),
        dbname=params["dbname"],
        user=APP_ROLE,
        password=PASSWORD,
        autocommit=True,
    )
    yield conn, Deployment.objects.get(pk=deployment.pk)
    conn.close()


def _event_row(deployment, *, seq, prev_hash, summary="the lead approved everything"):
    fields = dict(
        deployment_id=deployment.pk,
        seq=seq,
        created_at=timezone.now(),
        actor_id=None,
        actor_label="Warroom",
        action="forged",
        object_type="",
        object_id="",
        summary=summary,
        before=None,
        after=None,
        prev_hash=prev_hash,
    )
    return {**fields, "hash": event_hash(**fields)}


def _insert(conn, row):
    conn.execute(
        "INSERT INTO deployments_event (deployment_id, seq, created_at, actor_id, actor_label, action, object_type, "
        "object_id, summary, before, after, prev_hash, hash) VALUES (%(deployment_id)s, %(seq)s, %(created_at)s, "
        "%(actor_id)s, %(actor_label)s, %(action)s, %(object_type)s, %(object_id)s, %(summary)s, NULL, NULL, "
        "%(prev_hash)s, %(hash)s)",
        row,
    )


def test_the_application_role_is_no_superuser_and_owns_nothing(app_db):
    conn, _ = app_db
    assert conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone() == (
        False,
        False,
        False,
    )
    owned = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()[0]
    assert owned == 0
    # It does its job: reads, and appends the next link of a chain.
    assert conn.execute("SELECT count(*) FROM deployments_event WHERE deployment_id = %s", [app_db[1].pk]).fetchone()[0]


def test_the_next_link_is_accepted(app_db):
    conn, deployment = app_db
    _insert(conn, _event_row(deployment, seq=deployment.event_count + 1, prev_hash=deployment.last_event_hash))


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("gap", "the next event of deployment"),
        ("duplicate", "the next event of deployment"),
        ("first", "the next event of deployment"),
        ("wrong prev", "its prev_hash is not the hash"),
    ],
)
def test_forged_or_out_of_order_events_are_refused(app_db, where, message):
    conn, deployment = app_db
    count, head = deployment.event_count, deployment.last_event_hash
    seq, prev = {
        "gap": (count + 2, head),
        "duplicate": (count, head),
        "first": (1, ""),
        "wrong prev": (count + 1, "0" * 64),
    }[where]
    with pytest.raises(psycopg.errors.CheckViolation, match=message):
        _insert(conn, _event_row(deployment, seq=seq, prev_hash=prev))


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE deployments_event",
        "TRUNCATE deployments_event, deployments_deployment CASCADE",
        "TRUNCATE auth_user CASCADE",
        "TRUNCATE deployments_chaincheckpoint",
        "UPDATE deployments_event SET summary = 'nothing happened'",
        "DELETE FROM deployments_event",
        "UPDATE deployments_chaincheckpoint SET head_hash = ''",
        "DELETE FROM deployments_chaincheckpoint",
        "UPDATE checklists_runbookedit SET summary = ''",
        "DELETE FROM checklists_runbookedit",
        "INSERT INTO django_migrations (app, name, applied) VALUES ('deployments', '9999_evil', now())",
        "CREATE TABLE deployments_event_copy (id int)",
    ],
)
def test_privileges_refuse_rewriting_history(app_db, statement):
    conn, deployment = app_db
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        conn.execute(statement)
    assert Deployment.objects.get(pk=deployment.pk).events.count() == deployment.event_count


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE deployments_event DISABLE TRIGGER ALL",
        "ALTER TABLE deployments_event DISABLE TRIGGER deployments_event_append_only",
        "DROP TRIGGER deployments_event_append_only ON deployments_event",
        "ALTER TABLE deployments_chaincheckpoint DISABLE TRIGGER ALL",
        "DROP FUNCTION warroom_event_next_link() CASCADE",
    ],
)
def test_triggers_cannot_be_disabled_or_dropped(app_db, statement):
    conn, _ = app_db
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
        conn.execute(statement)


def test_the_triggers_cannot_be_sidestepped_by_replication_mode(app_db):
    conn, _ = app_db
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET session_replication_role = replica")


def test_setup_without_the_role_changes_nothing(db, capsys):
    call_command("setup_db_roles", app_role="warroom_role_that_does_not_exist")
    assert "does not exist: nothing granted" in capsys.readouterr().out
