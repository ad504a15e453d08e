"""Incident endpoints and the review page, walked by every persona; malformed posts are 4xx, never 500."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.services import cast_vote
from deployments import services as deployment_services
from incidents import review, services
from incidents.models import ActionItem, Incident, Review

RAISE = {"lead": 204, "po": 204, "qa": 204, "devops": 204, "dba": 204, "observer": 403, "outsider": 404}


def client_for(user, *, htmx=True):
    client = Client(HTTP_HX_REQUEST="true") if htmx else Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("persona", "expected"), RAISE.items())
def test_raise_permission_matrix(crew, persona, expected):
    deployment, people = crew
    response = client_for(people[persona]).post(
        f"/deployments/{deployment.pk}/incidents/", {"severity": "sev3", "title": "Search is slow", "impact": "some users"}
    )
    assert response.status_code == expected
    assert Incident.objects.filter(deployment=deployment).exists() is (expected == 204)


@pytest.mark.parametrize(("persona", "expected"), RAISE.items())
def test_update_and_acknowledge_permission_matrix(crew, persona, expected):
    deployment, people = crew
    deployment_services.add_contact(
        deployment, people["lead"], role_name=None, level=1, name="On call", email="oncall@example.com"
    )
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Outage")
    client = client_for(people[persona])
    base = f"/deployments/{deployment.pk}/incidents/{incident.pk}"
    assert client.post(f"{base}/update/", {"text": "rolling back", "status": "mitigating"}).status_code == expected
    assert client.post(f"{base}/ack/").status_code == expected
    incident.refresh_from_db()
    assert (incident.status == "mitigating") is (expected == 204)
    assert (incident.acknowledged_at is not None) is (expected == 204)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"severity": "sev0", "title": "x"},
        {"severity": "sev1"},
        {"severity": "sev2", "title": "x" * 300},
        {"severity": ["sev1", "sev2"], "title": "x", "impact": "y" * 6000},
    ],
)
def test_malformed_raise_posts_answer_400(crew, data):
    deployment, people = crew
    response = client_for(people["qa"]).post(f"/deployments/{deployment.pk}/incidents/", data)
    assert response.status_code == 400 and response["HX-Trigger"]
    assert not Incident.objects.exists()


def test_malformed_update_and_unknown_ids(crew):
    deployment, people = crew
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev3", title="x")
    client = client_for(people["qa"])
    base = f"/deployments/{deployment.pk}/incidents"
    assert client.post(f"{base}/{incident.pk}/update/", {}).status_code == 400
    assert client.post(f"{base}/{incident.pk}/update/", {"text": "x", "severity": "sev7"}).status_code == 400
    assert client.post(f"{base}/{incident.pk}/ack/").status_code == 400  # nobody paged
    assert client.post(f"{base}/999999/update/", {"text": "x"}).status_code == 404
    assert client.get(f"{base}/").status_code == 405
    # An incident of another deployment is not reachable through this one.
    other = deployment_services.create_deployment(
        deployment.runbook_version,
        lead=people["lead"],
        name="Other",
        service="s",
        version_label="1",
        environment="staging",
        planned_t0=timezone.now() + timedelta(hours=3),
    )
    assert (
        client_for(people["lead"]).post(f"/deployments/{other.pk}/incidents/{incident.pk}/update/", {"text": "x"}).status_code
        == 404
    )


def test_the_warroom_shows_incidents_to_everyone_and_forms_to_role_holders(crew):
    deployment, people = crew
    services.raise_incident(deployment.pk, people["qa"], severity="sev2", title="<b>Slow</b> checkout", impact="EU users")
    page = client_for(people["observer"], htmx=False).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "INC-1: &lt;b&gt;Slow&lt;/b&gt; checkout" in page and "<b>Slow</b>" not in page
    assert 'class="raise-incident role-only"' in page  # hidden for observers by CSS/JS; the server refuses anyway


def finish(deployment, lead):
    for state in ("scheduled", "in_progress"):
        deployment_services.change_state(deployment.pk, lead, state)
    deployment_services.change_state(deployment.pk, lead, "completed", override_reason="nothing was ticked in this test")


REVIEW_EDIT = {"lead": 302, "po": 302, "qa": 302, "devops": 302, "dba": 302, "observer": 403, "outsider": 404}


@pytest.mark.parametrize(("persona", "expected"), REVIEW_EDIT.items())
def test_review_permission_matrix(crew, persona, expected):
    deployment, people = crew
    finish(deployment, people["lead"])
    client = client_for(people[persona], htmx=False)
    assert client.get(f"/deployments/{deployment.pk}/review/").status_code == (404 if persona == "outsider" else 200)
    response = client.post(
        f"/deployments/{deployment.pk}/review/",
        {
            "notes": "went fine",
            "lessons_learned": "start backups earlier",
            "follow_up_status": "in_progress",
            "held_at": "2031-03-01T14:00",
        },
    )
    assert response.status_code == expected
    assert Review.objects.filter(deployment=deployment, lessons_learned="start backups earlier").exists() is (expected == 302)


def test_review_forms_refuse_bad_input_with_400(crew):
    deployment, people = crew
    client = client_for(people["qa"], htmx=False)
    url = f"/deployments/{deployment.pk}/review/"
    response = client.post(url, {"notes": "x", "follow_up_status": "open"})
    assert response.status_code == 400 and "opens when the deployment is finished" in response.content.decode()
    finish(deployment, people["lead"])
    assert client.post(url, {"notes": "x", "follow_up_status": "someday"}).status_code == 400
    assert client.post(url, {"notes": "x", "follow_up_status": "open", "held_at": "tomorrow"}).status_code == 400
    assert client.post(url, {"notes": "x", "follow_up_status": "open", "revision": "two"}).status_code == 400
    actions = f"{url}actions/"
    assert client.post(actions, {"text": "x", "owner": "devops"}).status_code == 400
    assert client.post(actions, {"text": "x", "due_date": "31/02/2031"}).status_code == 400
    assert client.post(actions, {"text": "x", "owner": str(people["outsider"].pk)}).status_code == 400
    assert client.post(actions, {"text": ""}).status_code == 400
    assert client.post(f"{actions}999999/", {"status": "done"}).status_code == 404
    assert not ActionItem.objects.exists()
    item = review.add_action_item(deployment.pk, people["qa"], text="Alert on lag", owner_id=people["dba"].pk, due_date=None)
    assert client.post(f"{actions}{item.pk}/", {"status": "sideways"}).status_code == 400
    assert client.post(f"{actions}{item.pk}/", {"status": "done"}).status_code == 302
    item.refresh_from_db()
    assert item.status == "done" and item.done_at is not None


def test_the_review_page_names_choices_in_words_not_stored_values(crew):
    """The SEV1's rollback vote reads as the gate's own word ("NO-GO", as on the war room and in
    the runbook's ☐ GO ☐ NO-GO), never as the stored value."""
    deployment, people = crew
    for state in ("scheduled", "in_progress"):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Payments fail")
    cast_vote(incident.rollback_gate_id, people["po"], "no_go", reason="roll back now")  # pauses it
    deployment_services.change_state(
        deployment.pk, people["lead"], "rolled_back", reason="payments failed", override_reason="rolled back in this test"
    )
    review.add_action_item(deployment.pk, people["qa"], text="Add a payments canary", owner_id=None, due_date=None)
    review.set_action_status(ActionItem.objects.get().pk, people["qa"], "in_progress")

    html = client_for(people["observer"], htmx=False).get(f"/deployments/{deployment.pk}/review/").content.decode()
    assert "<strong>Rollback vote:</strong> NO-GO — " in html
    assert "NO_GO" not in html and "no_go" not in html
    assert "<td>In progress</td>" in html and "in_progress" not in html
