from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from warroom.health import run_checks


@never_cache
@require_GET
def healthz(request):
    """Liveness of the parts Warroom needs; 503 when any is down. No secrets in the answer."""
    healthy, checks = run_checks()
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)
