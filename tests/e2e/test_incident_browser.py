"""Raising a SEV1 in one browser: every other screen sees the incident and its rollback
gate appear without a reload; an acknowledgement stops the escalation for everyone."""

import pytest
from playwright.sync_api import expect

from deployments import services as deployment_services
from incidents.models import Incident

pytestmark = pytest.mark.django_db(transaction=True)


def open_warroom(login, persona, deployment):
    page = login(persona)
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    return page


def test_a_sev1_raised_in_one_browser_opens_the_rollback_gate_on_every_screen(crew, login):
    deployment, people = crew
    deployment_services.add_contact(
        deployment, people["lead"], role_name="DevOps Engineer", level=1, name="Devi Ops", email="devi@example.com"
    )
    deployment_services.add_contact(deployment, people["lead"], role_name=None, level=2, name="Lena Lead", phone="+49 30 1234")
    qa = open_warroom(login, "qa", deployment)
    po = open_warroom(login, "po", deployment)
    observer = open_warroom(login, "observer", deployment)
    expect(observer.get_by_text("Raise an incident")).to_be_hidden()
    expect(po.locator(".gate-panel", has_text="Roll back?")).to_have_count(0)

    qa.get_by_text("Raise an incident").click()
    qa.get_by_label("Severity").select_option("sev1")
    qa.get_by_label("What is wrong").fill("Payments fail for 30 % of checkouts")
    qa.get_by_label("Impact").fill("EU customers cannot pay")
    qa.once("dialog", lambda dialog: dialog.accept())
    qa.get_by_role("button", name="Raise SEV1: page on-call and open a rollback vote").click()

    # Another screen, no reload: the incident, its escalation, and the gate with PO's vote buttons.
    incident_card = po.locator("#wr-incidents article.incident")
    expect(incident_card).to_contain_text("INC-1: Payments fail for 30 % of checkouts")
    expect(incident_card).to_contain_text("Paging level 1")
    gate = po.locator(".gate-panel", has_text="Roll back? SEV1 INC-1")
    expect(gate).to_be_visible()
    expect(gate).to_contain_text("decider: Product Owner")
    expect(gate.get_by_role("button", name="Vote NO-GO")).to_be_visible()
    expect(observer.locator(".gate-panel", has_text="Roll back? SEV1 INC-1")).to_be_visible()
    expect(observer.get_by_role("button", name="Acknowledge INC-1")).to_be_hidden()

    devops = open_warroom(login, "devops", deployment)
    devops.get_by_role("button", name="Acknowledge INC-1").click()
    expect(po.locator("#wr-incidents")).to_contain_text("Acknowledged by Devi Ops")
    expect(qa.locator("#wr-incidents")).to_contain_text("escalation stopped")
    incident = Incident.objects.get(deployment=deployment)
    assert incident.acknowledged_by == people["devops"] and incident.next_escalation_at is None


def test_an_update_reaches_other_screens_and_a_refusal_is_shown(crew, login):
    deployment, people = crew
    qa = open_warroom(login, "qa", deployment)
    lead = open_warroom(login, "lead", deployment)
    qa.get_by_text("Raise an incident").click()
    qa.get_by_label("What is wrong").fill("Search is slow")
    qa.once("dialog", lambda dialog: dialog.accept())
    qa.get_by_role("button", name="Raise incident").click()
    expect(lead.locator("#wr-incidents")).to_contain_text("INC-1: Search is slow")

    lead.get_by_text("Post an update on INC-1").click()
    lead.get_by_label("Update", exact=True).fill("index rebuilt, p95 back to 300 ms")
    lead.get_by_label("New status").select_option("resolved")
    lead.get_by_role("button", name="Post update").click()
    expect(qa.locator("#wr-incidents")).to_contain_text("Resolved incidents (1)")
    expect(qa.locator("#wr-incidents")).to_contain_text("No open incidents.")

    # An empty update is refused with the reason, in words.
    lead.get_by_text("Resolved incidents (1)").click()
    lead.get_by_role("button", name="Post update").click()
    expect(lead.locator("#toast")).to_have_text("Write an update, or change the status or severity.")
