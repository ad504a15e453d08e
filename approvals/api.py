"""Token-authenticated JSON API for CI pipelines: read gates, wait for a decision, tick plain lines.

Authorization: Bearer <token> (per deployment, created by the lead, stored hashed).
No cookies are read, so these endpoints are exempt from CSRF. A token acts as the
deployment's pipeline (``deployments.actors.pipeline``), whose narrow rights
``deployments.permissions`` decides: never a gate line, a choice, a field or a
required approval's line. A refusal answers 403 with the reason as JSON.
"""

import asyncio
import json
import math
import time

from asgiref.sync import sync_to_async
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from approvals.models import SETTLED_GATE_STATES, Gate
from approvals.services import authenticate_token, eligible_voters, tally
from deployments import actors
from deployments import services as deployment_services
from deployments.models import Item
from deployments.permissions import READ_GATES, PermissionDenied, require_system

MAX_WAIT_SECONDS = 60


def _error(status, message):
    return JsonResponse({"error": message}, status=status)


def _token_for(request, deployment_id):
    header = request.headers.get("Authorization", "")
    raw = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    token = authenticate_token(raw)
    if token is None or token.deployment_id != deployment_id:
        return None
    return token


def _pipeline(token):
    return actors.pipeline(token.name)


def gate_json(gate: Gate) -> dict:
    votes_tally = tally(gate, voters=eligible_voters(gate))
    return {
        "id": gate.pk,
        "title": gate.title,
        "state": gate.state,
        "decision": gate.decision or None,
        "decision_label": gate.label_for(gate.decision) or None,
        "summary": gate.decision_summary,
        "decided_at": gate.decided_at.isoformat() if gate.decided_at else None,
        "votes": {
            "go": len(votes_tally.go),
            "no_go": len(votes_tally.no_go),
            "stale": len(votes_tally.stale),
            "not_voted": len(votes_tally.waiting),
        },
    }


@require_GET
def gates(request, pk):
    token = _token_for(request, pk)
    if token is None:
        return _error(401, "A valid API token for this deployment is required (Authorization: Bearer …).")
    require_system(_pipeline(token), READ_GATES)
    return JsonResponse({"deployment": pk, "gates": [gate_json(g) for g in Gate.objects.filter(deployment_id=pk)]})


def _wait_seconds(raw: str) -> float | None:
    """?wait= as seconds within 0…MAX_WAIT_SECONDS; None for what is not a finite number
    (nan, inf and "1e999" would otherwise hold the request forever). Above the cap: the cap."""
    if raw.strip() == "":
        return 0.0
    if len(raw) > 32:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(value, MAX_WAIT_SECONDS)


def _release_connection() -> None:
    connection.close()  # this thread's: with the pool, handed back to it


@require_GET
async def gate(request, pk, gate_pk):
    """?wait=N (seconds, up to 60) holds the answer until the gate is decided or time runs out."""
    token = await sync_to_async(_token_for)(request, pk)
    if token is None:
        return _error(401, "A valid API token for this deployment is required (Authorization: Bearer …).")
    require_system(_pipeline(token), READ_GATES)
    wait = _wait_seconds(request.GET.get("wait", ""))
    if wait is None:
        return _error(400, f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}.")
    deadline = time.monotonic() + wait
    while True:
        found = await sync_to_async(lambda: Gate.objects.filter(deployment_id=pk, pk=gate_pk).first())()
        if found is None:
            return _error(404, "No such gate in this deployment.")
        if found.state in SETTLED_GATE_STATES or time.monotonic() >= deadline:
            return JsonResponse(await sync_to_async(gate_json)(found))
        await sync_to_async(_release_connection)()  # a waiting pipeline holds no pooled connection
        await asyncio.sleep(0.5)


@csrf_exempt
@require_POST
def item_done(request, pk, item_pk):
    token = _token_for(request, pk)
    if token is None:
        return _error(401, "A valid API token for this deployment is required (Authorization: Bearer …).")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "The body must be JSON.")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.")
    item = Item.objects.filter(deployment_id=pk, pk=item_pk).first()
    if item is None:
        return _error(404, "No such item in this deployment.")
    kwargs = {"checked": True} if item.kind == "check" else {"value": str(body.get("value", ""))}
    if "note" in body:
        kwargs["note"] = str(body["note"])
    try:
        updated = deployment_services.update_item(item.pk, _pipeline(token), revision=None, **kwargs)
    except PermissionDenied as exc:
        return _error(403, str(exc))
    except deployment_services.InvalidChange as exc:
        return _error(409, str(exc))
    except ObjectDoesNotExist:
        return _error(404, "No such item in this deployment.")
    return JsonResponse({"id": updated.pk, "checked": updated.checked, "value": updated.value, "revision": updated.revision})
