"""Is each part Warroom needs alive? Used by GET /healthz and `manage.py healthz`."""

import time

from django.db import connection

from deployments import live
from warroom.celery import app


def _check(fn):
    started = time.monotonic()
    try:
        detail = fn()
    except Exception as exc:  # any failure is the answer: the component is down
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), **(detail or {})}


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis():
    live.redis_client().ping()


def _celery():
    replies = app.control.ping(timeout=1.0) or []
    if not replies:
        raise RuntimeError("no Celery worker answered within 1 s")
    return {"workers": sorted(name for reply in replies for name in reply)}


def run_checks() -> tuple[bool, dict]:
    checks = {"database": _check(_database), "redis": _check(_redis), "celery": _check(_celery)}
    return all(c["ok"] for c in checks.values()), checks
