"""A harmless but real migration for the demo target: `python -m rollouts.demo_migration`.

It reads DATABASE_URL (given by the target's migrate_env), applies the migrations it
has not applied yet, and says what it did — like `prisma migrate deploy` would.
"""

import os
import sys

import psycopg

MIGRATIONS = [
    (
        "0001_expense_accounts",
        "CREATE TABLE IF NOT EXISTS expense_accounts (id serial PRIMARY KEY, name text NOT NULL, "
        "balance_cents bigint NOT NULL DEFAULT 0)",
    ),
    ("0002_expense_accounts_index", "CREATE INDEX IF NOT EXISTS expense_accounts_name ON expense_accounts (name)"),
]


def main() -> int:
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())")
        applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        print(f"{len(applied)} migrations already applied")
        for name, sql in MIGRATIONS:
            if name in applied:
                continue
            with conn.transaction():
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", [name])
            print(f"✓ Applied migration: {name}")
    print("Migrations complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
