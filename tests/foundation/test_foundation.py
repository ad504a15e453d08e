"""Settings, health, and the commands a newcomer runs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from deployments.models import Deployment

BASE_DIR = Path(__file__).resolve().parents[2]


def _manage(*args, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WARROOM_HTTPS"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={
            "DJANGO_SECRET_KEY": "x" * 30 + "-production-key-with-enough-entropy-1234567890",
            "DJANGO_DEBUG": "0",
            "WARROOM_HTTPS": "1",
            "DJANGO_ALLOWED_HOSTS": "warroom.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
        ("WARROOM_POLL_SECONDS", "soon", "WARROOM_POLL_SECONDS='soon' is not a whole number"),
        ("DATABASE_URL", "sqlite:///x.db", "DATABASE_URL must be a postgresql:// URL"),
    ],
)
def test_bad_settings_stop_start_up_loudly(name, value, message):
    result = _manage("check", env_overrides={name: value, "DJANGO_SECRET_KEY": "k" * 60})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_without_secret_key_refuses_to_start():
    result = _manage(
        "check", env_overrides={"WARROOM_EMBEDDED_ACTIVE": "0", "DJANGO_DEBUG": "0", "DATABASE_URL": os.environ["DATABASE_URL"]}
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"DJANGO_DEBUG": "1"}, "DJANGO_SECRET_KEY is not set"),  # a developer's machine, no key yet
        ({"DJANGO_SECRET_KEY": "k" * 60}, "DATABASE_URL and REDIS_URL must be set"),
    ],
)
def test_importing_settings_starts_nothing_and_writes_nothing(tmp_path, given, message):
    """Only the entry points start the embedded services or write a key; the settings say what is missing."""
    run_dir = tmp_path / "run"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "WARROOM_EMBEDDED_ACTIVE") and not k.startswith("DJANGO_")
    }
    env.update(WARROOM_RUN_DIR=str(run_dir), DJANGO_SETTINGS_MODULE="warroom.settings", **given)
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not run_dir.exists()  # no data directory, no key file, no PostgreSQL or Redis started there


@pytest.mark.django_db
def test_healthz_is_503_without_a_worker():
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert not body["checks"]["celery"]["ok"]
    assert "password" not in response.content.decode().lower()


@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_with_a_real_worker(celery_worker):
    response = Client().get("/healthz")
    assert response.status_code == 200, response.content
    assert any(w.startswith("testworker@") for w in response.json()["checks"]["celery"]["workers"])


@pytest.mark.django_db
def test_login_page_and_demo_logins(capsys):
    call_command("seed_demo", "--password", "demo-pass-123")
    call_command("seed_demo", "--password", "demo-pass-123")  # idempotent
    out = capsys.readouterr().out

    assert Deployment.objects.count() == 1
    assert out.count("Created demo deployment") == 1
    client = Client()
    assert client.get("/login/").status_code == 200
    for username in ("lead", "po", "qa", "devops", "dba", "outsider"):
        assert client.login(username=username, password="demo-pass-123"), username
    client.login(username="po", password="demo-pass-123")
    deployment = Deployment.objects.get()
    assert client.get(f"/deployments/{deployment.pk}/").status_code == 200
    client.login(username="outsider", password="demo-pass-123")
    assert client.get(f"/deployments/{deployment.pk}/").status_code == 404
