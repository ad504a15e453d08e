"""Two database roles: an owner that migrates, an application role that runs Warroom.

The **owner** (``warroom_owner`` on the embedded default) owns the database and every
table; only ``migrate`` (and ``setup_db_roles``) connect as it. The **application
role** (``warroom_app``), used by the web server, the Celery worker and beat:

- is not a superuser and owns nothing, so it cannot ``ALTER TABLE … DISABLE TRIGGER``,
  drop the append-only triggers or ``SET session_replication_role``;
- has no ``TRUNCATE`` anywhere;
- may SELECT, INSERT, UPDATE and DELETE ordinary tables, but only SELECT and INSERT
  on append-only ones (models with ``APPEND_ONLY = True``: the event log, its
  checkpoints, the runbook edit log), whose INSERTs still pass the chain triggers;
- may only read ``django_migrations``.

``grant_statements`` is the SQL, ``apply_grants`` runs it (as the owner or a superuser;
idempotent, and a no-op when the application role does not exist). The embedded
default creates both roles (``create_roles``, as the cluster's superuser); for any
other PostgreSQL the README gives the ``CREATE ROLE`` lines.
"""

from __future__ import annotations

from django.apps import apps
from psycopg import sql

DEFAULT_APP_ROLE = "warroom_app"
DEFAULT_OWNER_ROLE = "warroom_owner"
READ_ONLY_TABLES = ("django_migrations",)


def append_only_tables() -> list[str]:
    return sorted(model._meta.db_table for model in apps.get_models() if getattr(model, "APPEND_ONLY", False))


def role_exists(cursor, role: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    return cursor.fetchone() is not None


def grant_statements(app_role: str, *, database: str, append_only: list[str], schema: str = "public") -> list[sql.Composed]:
    role, schema_id = sql.Identifier(app_role), sql.Identifier(schema)
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, role),
        # Start from nothing each time, so a privilege granted by hand does not linger.
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema_id, role),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(schema_id, role),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema_id, role),
        # Tables a later migration creates (as this same role) get the ordinary rights at once.
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}").format(
            schema_id, role
        ),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(schema_id, role),
    ]
    for table in append_only:
        statements.append(sql.SQL("REVOKE UPDATE, DELETE ON {}.{} FROM {}").format(schema_id, sql.Identifier(table), role))
    for table in READ_ONLY_TABLES:
        statements.append(
            sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {}.{} FROM {}").format(schema_id, sql.Identifier(table), role)
        )
    return statements


def apply_grants(connection, app_role: str) -> list[str]:
    """Grant ``app_role`` its rights on the connection's database; returns what was done, in words."""
    with connection.cursor() as cursor:
        if not role_exists(cursor, app_role):
            return [f"role {app_role} does not exist: nothing granted (create it first, see README)"]
        cursor.execute("SELECT current_database(), current_user")
        database, user = cursor.fetchone()
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app_role])
        if cursor.fetchone()[0]:
            raise RuntimeError(
                f"role {app_role} is a superuser: privileges mean nothing to it; ALTER ROLE {app_role} NOSUPERUSER"
            )
        append_only = append_only_tables()
        for statement in grant_statements(app_role, database=database, append_only=append_only):
            cursor.execute(statement)
    return [
        f"granted {app_role} read/write on {database} as {user}",
        f"SELECT and INSERT only on {', '.join(append_only)}; SELECT only on {', '.join(READ_ONLY_TABLES)}; no TRUNCATE",
    ]


def create_roles(cursor, *, owner: str, app: str) -> None:
    """As a superuser: both login roles, neither a superuser (passwordless: the embedded cluster trusts local sockets)."""
    for role, extra in ((owner, "CREATEDB"), (app, "NOCREATEDB")):
        if not role_exists(cursor, role):
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        cursor.execute(
            sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS " + extra).format(
                sql.Identifier(role)
            )
        )


def hand_over(cursor, *, database: str, owner: str, schema: str = "public") -> None:
    """Make ``owner`` own the database and everything in its schema (as a superuser, connected to it).

    Databases made before the roles existed belong to the superuser that created them.
    """
    owner_id = sql.Identifier(owner)
    cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), owner_id))
    cursor.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), owner_id))
    # Tables, views and stand-alone sequences (identity sequences follow their table).
    cursor.execute(
        """
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND pg_get_userbyid(c.relowner) <> %s
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
        """,
        [schema, owner],
    )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for name, kind in cursor.fetchall():
        cursor.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(kinds[kind]), sql.Identifier(schema), sql.Identifier(name), owner_id
            )
        )
    cursor.execute(
        """
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) <> %s
        """,
        [schema, owner],
    )
    for (signature,) in cursor.fetchall():
        cursor.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), owner_id))
