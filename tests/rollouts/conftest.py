"""Real targets for automated steps: a database in the test PostgreSQL, a local HTTP server."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings

from rollouts.models import Target
from rollouts.setup import save_target

TARGET_PASSWORD = "s3cret-target-pass"


@pytest.fixture
def target_db():
    """A real database with a password-protected owner and some rows; dropped afterwards."""
    name = f"target_{uuid.uuid4().hex[:10]}"
    role = f"{name}_owner"
    admin = settings.DATABASE_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(TARGET_PASSWORD)
            )
        )
        conn.execute(
            psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(psycopg.sql.Identifier(name), psycopg.sql.Identifier(role))
        )
    parts = urlsplit(admin)
    url = urlunsplit(
        parts._replace(
            netloc=f"{role}:{TARGET_PASSWORD}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else ""), path="/" + name
        )
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL)")
        conn.execute("INSERT INTO accounts (owner) SELECT 'customer ' || g FROM generate_series(1, 3000) g")
        conn.execute("CREATE TABLE audit (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO audit (note) SELECT 'n' || g FROM generate_series(1, 10) g")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
        conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(psycopg.sql.Identifier(role)))


@pytest.fixture
def make_target(tmp_path):
    def _make(database_url="", **fields):
        url_file = ""
        if database_url:
            path = tmp_path / f"{uuid.uuid4().hex}.url"
            path.write_text(database_url)
            url_file = str(path)
        return save_target(Target(name=fields.pop("name", f"t-{uuid.uuid4().hex[:8]}"), database_url_file=url_file, **fields))

    return _make


@pytest.fixture
def http_service():
    """A small real HTTP service: /health answers JSON, /slow sleeps, /broken is 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                body, status = json.dumps({"status": "ok", "db": {"ok": True}}).encode(), 200
            elif self.path == "/slow":
                time.sleep(0.3)
                body, status = b"slow but fine", 200
            else:
                body, status = b"boom", 500
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
