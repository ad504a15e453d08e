import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from deployments import live


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
    from warroom.celery import app

    replies = app.control.ping(timeout=1.0) or []
    if not replies:
        raise RuntimeError("no Celery worker answered within 1 s")
    return {"workers": sorted(name for reply in replies for name in reply)}


@never_cache
@require_GET
def healthz(request):
    """Liveness of the parts Warroom needs; 503 when any is down. No secrets in the answer."""
    checks = {"database": _check(_database), "redis": _check(_redis), "celery": _check(_celery)}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)
