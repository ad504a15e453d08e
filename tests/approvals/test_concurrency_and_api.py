"""Fifty voters at once, and the pipeline API with tokens."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from approvals import services
from approvals.models import ApiToken, Decision, Gate, GateRule, GateState, Vote
from deployments import services as deployment_services
from deployments.models import DeploymentRole, Event, Item
from deployments.permissions import PermissionDenied
from tests.factories import make_deployment, make_user


@pytest.mark.django_db(transaction=True)
def test_fifty_simultaneous_votes_count_once_each_and_close_once(crew):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    qa_role = DeploymentRole.objects.get(deployment=deployment, name="QA Lead")
    voters = [make_user(f"voter{i}") for i in range(50)]
    for user in voters:
        deployment_services.set_participant(deployment, people["lead"], user, role_names=["QA Lead"])
    services.configure_gate(gate.pk, people["lead"], voter_role_ids=[qa_role.pk], rule=GateRule.QUORUM, quorum=50)
    # people["qa"] also holds QA Lead: 51 eligible, 50 GO needed.
    barrier = threading.Barrier(len(voters))
    errors = []

    def vote(user):
        try:
            barrier.wait()
            services.cast_vote(gate.pk, user, Decision.GO)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=(u,)) for u in voters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    gate.refresh_from_db()
    assert Vote.objects.filter(gate=gate).count() == 50
    assert gate.state == GateState.CLOSED and gate.decision == Decision.GO
    assert Event.objects.filter(deployment=deployment, action="gate.decided").count() == 1


def _api(client, method, path, token=None, body=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if method == "get":
        return client.get(path, **headers)
    return client.post(path, data=json.dumps(body or {}), content_type="application/json", **headers)


def test_token_lifecycle_and_gate_api(crew):
    deployment, people = crew
    with pytest.raises(PermissionDenied):
        services.create_api_token(deployment, people["qa"], name="ci")
    token, raw = services.create_api_token(deployment, people["lead"], name="GitLab pipeline")
    assert raw not in token.token_hash and ApiToken.objects.get().token_hash == services.hash_token(raw)
    client = Client(enforce_csrf_checks=True)
    assert _api(client, "get", f"/api/v1/deployments/{deployment.pk}/gates/").status_code == 401
    assert _api(client, "get", f"/api/v1/deployments/{deployment.pk}/gates/", "wr_wrong").status_code == 401
    listing = _api(client, "get", f"/api/v1/deployments/{deployment.pk}/gates/", raw)
    assert listing.status_code == 200
    gate_id = listing.json()["gates"][0]["id"]
    state = _api(client, "get", f"/api/v1/deployments/{deployment.pk}/gates/{gate_id}/?wait=0", raw).json()
    assert state["state"] == "open" and state["decision"] is None
    # Another deployment's token does not open this one.

    other = make_deployment(lead=people["lead"])
    _, other_raw = services.create_api_token(other, people["lead"], name="other")
    assert _api(client, "get", f"/api/v1/deployments/{deployment.pk}/gates/", other_raw).status_code == 401
    # Mark a step's item done from the pipeline, without CSRF (no cookies involved).
    item = Item.objects.get(deployment=deployment, text="Check 1.1")
    done = _api(client, "post", f"/api/v1/deployments/{deployment.pk}/items/{item.pk}/done/", raw, {"note": "job #812"})
    assert done.status_code == 200 and done.json()["checked"] is True
    item.refresh_from_db()
    assert item.checked and item.done_by_system == "Pipeline “GitLab pipeline”" and item.note == "job #812"
    assert _api(client, "post", f"/api/v1/deployments/{deployment.pk}/items/{gate_id}9999/done/", raw).status_code == 404
    services.revoke_api_token(token.pk, people["lead"])
    assert _api(client, "get", f"/api/v1/deployments/{deployment.pk}/gates/", raw).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_pipeline_waits_for_the_human_go(crew):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    qa_role = DeploymentRole.objects.get(deployment=deployment, name="QA Lead")
    services.configure_gate(gate.pk, people["lead"], voter_role_ids=[qa_role.pk], rule=GateRule.UNANIMOUS)
    _, raw = services.create_api_token(deployment, people["lead"], name="ci")
    timer = threading.Timer(1.0, lambda: (services.cast_vote(gate.pk, people["qa"], Decision.GO), connection.close()))
    timer.start()
    try:
        response = Client().get(
            f"/api/v1/deployments/{deployment.pk}/gates/{gate.pk}/?wait=20", HTTP_AUTHORIZATION=f"Bearer {raw}"
        )
    finally:
        timer.join()
    body = response.json()
    assert body["state"] == "closed" and body["decision"] == "go" and body["votes"]["go"] == 1


@pytest.mark.parametrize(
    ("persona", "expected"), [("po", 204), ("qa", 204), ("devops", 403), ("observer", 403), ("outsider", 404)]
)
def test_vote_endpoint_permission_matrix(crew, persona, expected):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    roles = list(
        DeploymentRole.objects.filter(deployment=deployment, name__in=["QA Lead", "Product Owner"]).values_list("pk", flat=True)
    )
    services.configure_gate(gate.pk, people["lead"], voter_role_ids=roles, rule=GateRule.UNANIMOUS)
    client = Client()
    client.force_login(people[persona])
    response = client.post(f"/deployments/{deployment.pk}/gates/{gate.pk}/vote/", {"choice": "go"}, HTTP_HX_REQUEST="true")
    assert response.status_code == expected
    assert Vote.objects.filter(gate=gate, voter=people[persona]).exists() is (expected == 204)
