"""Every comms page and endpoint, walked by every persona; malformed posts answer 4xx, never 500;
the public status page needs no login and shows nothing internal."""

import pytest
from django.test import Client

from comms import services
from comms.models import Channel, Message, MessageTemplate, StatusPage
from deployments.models import Event
from incidents import services as incident_services
from tests.comms.conftest import email_channel, simple_template

PERSONAS = ["lead", "po", "qa", "devops", "dba", "observer", "outsider"]
LEAD_ONLY = {"lead": 302, "po": 403, "qa": 403, "devops": 403, "dba": 403, "observer": 403, "outsider": 404}


def client_for(user, *, htmx=False):
    client = Client(HTTP_HX_REQUEST="true") if htmx else Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("persona", PERSONAS)
def test_comms_page_and_preview_visible_to_participants_only(crew, persona):
    deployment, people = crew
    template = simple_template(deployment, people["lead"], [])
    client = client_for(people[persona])
    expected = 404 if persona == "outsider" else 200
    assert client.get(f"/deployments/{deployment.pk}/comms/").status_code == expected
    assert client.get(f"/deployments/{deployment.pk}/comms/templates/{template.pk}/preview/").status_code == expected


@pytest.mark.parametrize(("persona", "expected"), LEAD_ONLY.items())
def test_template_and_channel_editing_is_the_leads(crew, persona, expected):
    deployment, people = crew
    client = client_for(people[persona])
    response = client.post(
        f"/deployments/{deployment.pk}/comms/channels/", {"name": "Users", "transport": "email", "recipients": "u@example.com"}
    )
    assert response.status_code == expected
    assert Channel.objects.filter(deployment=deployment).exists() is (expected == 302)
    response = client.post(
        f"/deployments/{deployment.pk}/comms/templates/",
        {"name": "Notice", "subject": "Maintenance {{ deployment.t0 }}", "body": "Hello", "offset": "T-24h"},
    )
    assert response.status_code == expected
    saved = MessageTemplate.objects.filter(deployment=deployment, name="Notice").first()
    assert (saved is not None) is (expected == 302)
    if saved:
        assert saved.offset_minutes == -1440


SEND = {"lead": 204, "po": 204, "qa": 403, "devops": 403, "dba": 403, "observer": 403, "outsider": 404}


@pytest.mark.parametrize(("persona", "expected"), SEND.items())
def test_send_permission_matrix(crew, persona, expected):
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "u@example.com")
    po = deployment.roles.get(name="Product Owner")
    template = simple_template(deployment, people["lead"], [channel], sender_role_id=po.pk)
    response = client_for(people[persona], htmx=True).post(f"/deployments/{deployment.pk}/comms/templates/{template.pk}/send/")
    assert response.status_code == expected
    assert Message.objects.filter(deployment=deployment).exists() is (expected == 204)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "T", "subject": "s", "body": "{{ deployment.secret }}"}, "unknown variable"),
        ({"name": "T", "subject": "s", "body": "b", "offset": "yesterday"}, "is not an offset from T-0"),
        ({"name": "T", "subject": "s", "body": "b", "channels": ["abc"]}, "Malformed form"),
        ({"name": "T", "subject": "s", "body": "b", "channels": ["999999"]}, "not in this deployment"),
        ({"name": "T", "subject": "s", "body": "b", "sender_role": "x"}, "Malformed form"),
        ({"name": "T", "subject": "s", "body": "b", "kind": "spam"}, "Unknown template kind"),
        ({"name": "T", "subject": "", "body": "b"}, "needs a subject"),
        ({"name": "T", "subject": "s", "body": "b", "template_id": "nope"}, "Malformed form"),
        ({}, "Name the template"),
    ],
)
def test_malformed_template_posts_answer_400_with_the_reason(crew, data, message):
    deployment, people = crew
    response = client_for(people["lead"]).post(f"/deployments/{deployment.pk}/comms/templates/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    htmx = client_for(people["lead"], htmx=True).post(f"/deployments/{deployment.pk}/comms/templates/", data)
    assert htmx.status_code == 400 and message in htmx.content.decode()


def test_other_malformed_requests(crew):
    deployment, people = crew
    lead = client_for(people["lead"], htmx=True)
    base = f"/deployments/{deployment.pk}/comms"
    assert lead.post(f"{base}/channels/", {"name": "x", "transport": "email", "recipients": "not-an-address"}).status_code == 400
    # A typed address is no webhook: only an administrator-defined one can be named.
    assert lead.post(f"{base}/channels/", {"name": "x", "transport": "webhook", "url": "http://10.0.0.1/"}).status_code == 400
    assert not Channel.objects.filter(deployment=deployment, name="x").exists()
    assert lead.post(f"{base}/channels/", {"channel_id": "1x", "name": "x", "transport": "email"}).status_code == 400
    assert lead.post(f"{base}/templates/999999/send/").status_code == 404
    assert lead.post(f"{base}/scheduled/999999/cancel/").status_code == 404
    assert lead.post(f"{base}/status-page/", {"action": "explode"}).status_code == 400
    assert lead.get(f"{base}/templates/").status_code == 405
    template = simple_template(deployment, people["lead"], [])
    assert lead.post(f"{base}/templates/{template.pk}/send/").status_code == 400  # no channel
    assert lead.post(f"{base}/templates/{template.pk}/schedule/").status_code == 400  # no planned time


def test_status_page_lifecycle_and_what_it_shows(crew):
    deployment, people = crew
    lead = client_for(people["lead"], htmx=True)
    anonymous = Client()
    assert anonymous.get("/status/not-a-real-token/").status_code == 404
    assert (
        client_for(people["po"], htmx=True)
        .post(f"/deployments/{deployment.pk}/comms/status-page/", {"action": "enable"})
        .status_code
        == 403
    )

    assert lead.post(f"/deployments/{deployment.pk}/comms/status-page/", {"action": "enable"}).status_code == 204
    page = StatusPage.objects.get(deployment=deployment)
    assert len(page.token) >= 43
    channel = email_channel(deployment, people["lead"], "u@example.com")
    public = simple_template(
        deployment, people["lead"], [channel], name="Public", is_public=True, subject="We are upgrading", body="Back soon."
    )
    internal = simple_template(deployment, people["lead"], [channel], name="Internal", subject="Ops-only: db password rotated")
    services.send_template(public.pk, people["lead"])
    services.send_template(internal.pk, people["lead"])
    incident_services.raise_incident(deployment.pk, people["qa"], severity="sev2", title="Replica lag on db-7", impact="internal")

    response = anonymous.get(f"/status/{page.token}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "smartwallet" in body and "Scheduled maintenance" not in body and "Planned" in body
    assert "We are upgrading" in body  # the latest public message
    for internal_detail in ("Ops-only", "Replica lag", "Quinn", "Lena", "Release 1.2", "csrf"):
        assert internal_detail not in body
    assert response["Cache-Control"] == "no-store" and "noindex" in response["X-Robots-Tag"]
    # The token never reaches the event log, which every participant reads.
    assert not Event.objects.filter(deployment=deployment, summary__contains=page.token).exists()

    old = page.token
    assert lead.post(f"/deployments/{deployment.pk}/comms/status-page/", {"action": "regenerate"}).status_code == 204
    page.refresh_from_db()
    assert page.token != old
    assert anonymous.get(f"/status/{old}/").status_code == 404
    assert anonymous.get(f"/status/{page.token}/").status_code == 200
    assert lead.post(f"/deployments/{deployment.pk}/comms/status-page/", {"action": "revoke"}).status_code == 204
    assert anonymous.get(f"/status/{page.token}/").status_code == 404


def test_warroom_shows_the_comms_panel(crew):
    deployment, people = crew
    simple_template(deployment, people["lead"], [], name="Go-live notification")
    body = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'id="wr-comms"' in body and "Preview “Go-live notification”" in body
    assert 'id="wr-incidents"' in body
