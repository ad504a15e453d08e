import re

import pytest
from playwright.sync_api import expect

from deployments import services as deployment_services
from deployments.models import DeploymentState, Event, Item

pytestmark = pytest.mark.django_db(transaction=True)


def open_warroom(page, deployment):
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")


def test_qa_tick_shows_on_product_owner_screen_without_reload(crew, login):
    deployment, _ = crew
    item = Item.objects.get(deployment=deployment, text="Check 2.1")  # a QA Lead step
    qa = login("qa")
    po = login("po")
    open_warroom(qa, deployment)
    open_warroom(po, deployment)
    po.evaluate("window.__noReload = true")

    qa.get_by_role("checkbox", name="Check 2.1").check()

    expect(po.get_by_role("checkbox", name="Check 2.1")).to_be_checked(timeout=5000)
    expect(po.locator(f"#item-{item.pk} .done-by")).to_contain_text("Quinn")
    assert po.evaluate("window.__noReload") is True  # same document: no reload happened
    expect(po.locator("#wr-events")).to_contain_text("Ticked “Check 2.1”")
    item.refresh_from_db()
    assert item.checked


def test_controls_follow_roles(crew, login):
    deployment, _ = crew
    po = login("po")
    open_warroom(po, deployment)
    # The product owner holds no role on the DevOps and QA steps: their boxes are read-only.
    expect(po.get_by_role("checkbox", name="Check 1.1")).to_be_disabled()
    expect(po.get_by_role("textbox", name="Time Completed")).to_be_enabled()
    # Only the lead sees state controls.
    expect(po.get_by_role("button", name="Scheduled")).to_be_hidden()


def test_lead_moves_t0_and_every_screen_follows(crew, login):
    deployment, _ = crew
    lead = login("lead")
    qa = login("qa")
    open_warroom(lead, deployment)
    open_warroom(qa, deployment)
    before = qa.locator("#t-clock").get_attribute("data-t0")
    lead.get_by_text("Re-anchor T-0").click()
    lead.get_by_label(re.compile("New T-0")).fill("2030-01-05T03:30")
    lead.get_by_label("Reason").fill("Change freeze overran")
    lead.once("dialog", lambda dialog: dialog.accept())
    lead.get_by_role("button", name="Move T-0").click()
    expect(qa.locator("#t-clock")).not_to_have_attribute("data-t0", before, timeout=5000)
    # 03:30 in Berlin in January is 02:30 UTC.
    expect(qa.locator("#t-clock")).to_have_attribute("data-t0", "2030-01-05T02:30:00+00:00")
    expect(qa.locator("#wr-events")).to_contain_text("Change freeze overran")


def test_lead_completes_with_open_work_only_through_the_override(crew, login):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    lead = login("lead")
    open_warroom(lead, deployment)
    lead.locator(".complete-override summary").click()
    form = lead.locator(".complete-override-form")
    # make_version: 8 lines besides the gate line, none done, and the gate "Sign-off: Decision" open.
    expect(form).to_contain_text("8 of 8 checklist lines not done")
    expect(form).to_contain_text("gate open: “Sign-off: Decision”")
    form.get_by_label("Why complete anyway?").fill("verified in the vendor console")
    form.get_by_label("Complete with this work open").check()
    form.get_by_role("button", name="Complete anyway").click()
    expect(lead.locator("#deployment-state")).to_have_text("Completed", timeout=5000)
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.COMPLETED
    event = Event.objects.filter(deployment=deployment, action="deployment.state").latest("seq")
    assert event.after["override"]["reason"] == "verified in the vendor console"
