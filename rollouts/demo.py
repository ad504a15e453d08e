"""The demo's pretend production: a metrics source and a traffic router inside Warroom.

`make run` serves them, so the demo deployment's rollout reads real HTTP metrics and
moves "traffic" through a real HMAC-signed webhook — and the lead can push the error
rate into the red to watch the automatic abort.
"""

from __future__ import annotations

import json
import os
import random

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments import live
from deployments.forms import parse_id
from deployments.permissions import access_for, get_visible_deployment_or_404
from deployments.views import toast_response
from rollouts.models import DEMO_ROUTER, DEMO_SOURCE, MetricGate
from warroom.webhooks import BadSignature, verify_signature

SECRET_ENV = "WARROOM_DEMO_ROUTER_SECRET"  # noqa: S105 (the variable's name, not a secret)
_ERROR_KEY = "warroom:demo:error_rate"
_WEIGHTS_KEY = "warroom:demo:weights"
HEALTHY_ERROR_RATE = 0.2
RED_ERROR_RATE = 4.5


@require_GET
def metrics(request):
    """Current demo numbers: error rate and p95 latency of the 'new version'."""
    error_rate = float(live.redis_client().get(_ERROR_KEY) or HEALTHY_ERROR_RATE)
    latency = 180 + random.uniform(-20, 20) + (400 if error_rate > 1 else 0)  # noqa: S311 (demo jitter)
    return JsonResponse(
        {
            "error_rate_percent": round(error_rate + random.uniform(0, 0.05), 3),  # noqa: S311
            "p95_latency_ms": round(latency, 1),
        }
    )


def is_demo_deployment(deployment_id: int) -> bool:
    """A deployment whose rollout reads the demo's metrics (seed_demo makes one)."""
    return (
        settings.WARROOM_DEMO
        and MetricGate.objects.filter(plan__deployment_id=deployment_id, source_def__name=DEMO_SOURCE).exists()
    )


@login_required
@require_POST
def set_health(request):
    """The demo's red button: make the new version fail (or heal it).

    Only staff, or the lead of a demo deployment (named in the form), may press it; the
    CSRF token is checked as on every form.
    """
    if not request.user.is_staff:
        deployment_id = parse_id(request.POST.get("deployment", ""))
        if deployment_id is None:
            raise Http404("No such demo deployment")
        deployment = get_visible_deployment_or_404(request.user, deployment_id)
        if not is_demo_deployment(deployment.pk):
            raise Http404("No such demo deployment")
        if not access_for(request.user, deployment).is_lead:
            return toast_response("Only the lead of the demo deployment (or staff) may change the demo's health.", 403)
    healthy = request.POST.get("healthy") == "1"
    live.redis_client().set(_ERROR_KEY, HEALTHY_ERROR_RATE if healthy else RED_ERROR_RATE)
    return toast_response(f"Demo error rate set to {HEALTHY_ERROR_RATE if healthy else RED_ERROR_RATE} %", 200)


@csrf_exempt  # a machine-to-machine webhook: authenticated by its HMAC signature, not a cookie
@require_http_methods(["GET", "POST"])
def router(request):
    if request.method == "GET":
        return JsonResponse(json.loads(live.redis_client().get(_WEIGHTS_KEY) or '{"new": 0, "stable": 100}'))
    try:  # signed within the replay window (warroom.webhooks), or refused
        verify_signature(os.environ.get(SECRET_ENV, ""), request.body, request.headers)
    except BadSignature as exc:
        return HttpResponse(f"bad signature: {exc}", status=403)
    try:
        weights = json.loads(request.body)["weights"]
    except (ValueError, KeyError, TypeError):
        return HttpResponse("malformed body", status=400)
    live.redis_client().set(_WEIGHTS_KEY, json.dumps(weights))
    return JsonResponse({"ok": True, **weights})


def demo_plan() -> dict:
    """The demo's rollout: it names the router and metric source `seed_demo` defines."""
    return {
        "strategy": "canary",
        "router": DEMO_ROUTER,
        "sample": 5,
        "stages": [{"weight": 10, "hold": "60s"}, {"weight": 50, "hold": "60s"}, {"weight": 100, "hold": "30s"}],
        "gates": [
            {
                "name": "error_rate",
                "source": DEMO_SOURCE,
                "path": "error_rate_percent",
                "comparator": "<",
                "threshold": 1,
                "unit": "%",
                "consecutive_bad": 2,
            },
            {
                "name": "p95_latency",
                "source": DEMO_SOURCE,
                "path": "p95_latency_ms",
                "comparator": "<",
                "threshold": 500,
                "unit": "ms",
                "consecutive_bad": 2,
            },
        ],
    }
