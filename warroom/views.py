from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from warroom.health import run_checks


@never_cache
@require_GET
def healthz(request):
    """Liveness of the parts Warroom needs; 503 when any is down. No secrets in the answer."""
    healthy, checks = run_checks()
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)


@require_GET
def favicon(request):
    """Pages name their icon (<link rel=icon>); browsers and tools that ask the root get sent there."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
