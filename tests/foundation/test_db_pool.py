"""The web server's pooled database connections survive their server processes dying.

PostgreSQL restarting (or an administrator ending sessions) leaves the pool holding dead
connections. Each is tried as it is handed out, so the next page still renders instead of
failing for the unlucky person who drew a dead one.
"""

import urllib.request

import psycopg
import pytest
from django.db import connection
from django.test import Client

from tests.conftest import serving

pytestmark = pytest.mark.django_db(transaction=True)

APP_NAME = "warroom-pool-test"


def _get(base_url, path, sessionid):
    request = urllib.request.Request(base_url + path, headers={"Cookie": f"sessionid={sessionid}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def _end_server_sessions() -> int:
    """Terminate every PostgreSQL session the web server opened, from a separate connection."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
        ).fetchall()
    return len(rows)


def test_pages_render_after_the_pooled_connections_died(crew, process_env, tmp_path):
    deployment, people = crew
    client = Client()
    client.force_login(people["qa"])
    sessionid = client.cookies["sessionid"].value
    env = {**process_env, "PGAPPNAME": APP_NAME}  # the server's sessions carry this name
    with serving(env, tmp_path) as base_url:
        assert _get(base_url, f"/deployments/{deployment.pk}/", sessionid)[0] == 200
        assert _end_server_sessions() >= 1
        for _ in range(3):  # more than one request: each may draw a dead connection
            status, body = _get(base_url, f"/deployments/{deployment.pk}/", sessionid)
            assert status == 200
            assert deployment.name in body
