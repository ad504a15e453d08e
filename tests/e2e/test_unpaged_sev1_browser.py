"""A SEV1 on a deployment without contacts: the banner appears live on the war room and the TV;
the product owner's rollback decision reaches the other screens' incidents panel."""

import pytest
from playwright.sync_api import expect

from incidents import services

pytestmark = pytest.mark.django_db(transaction=True)

NOBODY = "SEV1 open and nobody can be paged: add contacts"


def open_screen(login, persona, path):
    page = login(persona)
    page.goto(path)
    expect(page.locator("#conn-state")).to_have_text("Live")
    return page


def test_the_no_contacts_banner_and_the_rollback_decision_reach_every_screen(crew, login):
    deployment, people = crew
    base = f"/deployments/{deployment.pk}"
    lead = open_screen(login, "lead", f"{base}/")
    po = open_screen(login, "po", f"{base}/")
    tv = open_screen(login, "observer", f"{base}/tv/")

    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Payments fail")

    banner = lead.locator(".unpaged-banner")
    expect(banner).to_contain_text(NOBODY)
    expect(banner.get_by_role("link", name="Add contacts")).to_be_visible()  # the lead's way out
    expect(po.locator(".unpaged-banner")).to_contain_text(NOBODY)
    expect(po.locator(".unpaged-banner").get_by_role("link", name="Add contacts")).to_be_hidden()
    expect(tv.locator(".tv-unpaged")).to_contain_text(NOBODY)
    lead.screenshot(path="/tmp/unpaged-warroom.png", full_page=False)
    tv.screenshot(path="/tmp/unpaged-tv.png")

    card = lead.locator(f"#incident-{incident.pk}")
    expect(card.locator(".incident-gate")).to_contain_text("open — vote in the gate panel")
    # The product owner decides the rollback vote in their browser (the decider rule).
    po.once("dialog", lambda d: d.accept("error rate at 30 %"))
    po.locator(f"#gate-{incident.rollback_gate_id}").get_by_role("button", name="Vote NO-GO").click()
    # The lead's screen, no reload: the incident says how its vote was decided.
    expect(card.locator(".incident-gate")).to_contain_text("decided NO-GO")
    expect(card).to_contain_text("Rollback vote decided NO-GO")
    expect(tv.locator(".tv-unpaged")).to_contain_text(NOBODY)  # still nobody to page
    lead.locator(f"#incident-{incident.pk}").screenshot(path="/tmp/decided-incident.png")
