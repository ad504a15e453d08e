"""The rollout plan form in a real browser: a runbook editor checks the plan drafted from the
runbook on the version page, adds a stage, fixes what the check says, saves, and the deployment
made from the version walks those stages in the war room."""

import pytest
from playwright.sync_api import expect

from checklists.importing import import_runbook
from deployments.models import Deployment
from tests.factories import make_user, release_manager
from tests.rollouts.test_plan_form import CANARY_RUNBOOK

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_editor_fills_the_plan_form_and_the_war_room_has_its_stages(login):
    editor = release_manager(make_user("editor"))  # makes deployments
    editor.is_staff = True  # and edits runbooks
    editor.save(update_fields=["is_staff"])
    version = import_runbook(CANARY_RUNBOOK, filename="canary.md").version

    page = login("editor", viewport={"width": 1280, "height": 800})
    page.goto(f"/runbooks/versions/{version.pk}/")
    page.evaluate("window.planNoReload = true")  # the form works in place: a reload would drop this
    page.get_by_role("link", name="Rollout plan").click()
    section = page.locator("#rb-rollout")
    expect(section).to_contain_text("drafted from lines 13, 17, 19, 25 of the runbook")
    expect(section.get_by_label("Step that carries the rollout")).to_have_value(
        str(version.phases.get(position=1).steps.get(position=0).pk)
    )
    expect(section.locator("#plan-stage-3").get_by_label("Traffic on the new version (%)")).to_have_value("100")

    # Add a stage: the draft's last stage becomes 75 %, and the new row is left empty at first.
    section.get_by_role("button", name="Add a stage").click()
    expect(section.locator("#plan-stage-4")).to_be_visible()
    section.locator("#plan-stage-3").get_by_label("Traffic on the new version (%)").fill("75")
    section.locator("#plan-stage-3").get_by_label("Hold (minutes)").fill("10")
    section.get_by_role("button", name="Save the rollout plan").click()
    # The check's words come back next to the row they are about, in place.
    expect(section.locator("#plan-stage-3 .plan-row-errors")).to_contain_text("The last stage must reach 100 % (it ends at 75 %)")
    section.screenshot(path="/tmp/plan-form-error-1280.png")

    section.locator("#plan-stage-4").get_by_label("Traffic on the new version (%)").fill("100")
    section.locator("#plan-stage-4").get_by_label("Hold (minutes)").fill("0")
    section.get_by_role("button", name="Save the rollout plan").click()
    expect(page.locator("#rb-rollout-status")).to_have_text("Rollout plan saved on step “Stage 1 (10%)”.")
    expect(section).to_contain_text("Step “Stage 1 (10%)” (Rollout) moves the traffic")
    assert page.evaluate("window.planNoReload") is True
    page.screenshot(path="/tmp/plan-form-1280.png", full_page=False)
    section.screenshot(path="/tmp/plan-form-section-1280.png")

    phone = login("editor", viewport={"width": 390, "height": 844})
    phone.goto(f"/runbooks/versions/{version.pk}/#rb-rollout")
    phone.locator("#rb-rollout").scroll_into_view_if_needed()
    phone.screenshot(path="/tmp/plan-form-390.png")
    phone.locator("#rb-rollout").screenshot(path="/tmp/plan-form-section-390.png")
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"

    page.get_by_role("link", name="New deployment from this version").click()
    page.locator("#id_name").fill("Checkout 2.0")
    page.locator("#id_service").fill("checkout")
    page.locator("#id_version_label").fill("2.0.0")
    page.locator("#id_planned_t0").fill("2030-03-02T02:00")
    page.get_by_role("button", name="Create deployment").click()
    page.wait_for_url("**/deployments/*/people/")
    deployment = Deployment.objects.get()
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("ol.stages li")).to_have_text(
        ["10 % hold 900 s", "50 % hold 1800 s", "75 % hold 600 s", "100 % hold 0 s"]
    )
    expect(page.locator("table.gates")).to_contain_text("Error rate")

    # The lead's plan page of the deployment: the same form, and the plan as a warroom block.
    page.get_by_role("link", name="Plan: stages, router and gates").click()
    expect(page.locator("#plan-stage-3").get_by_label("Traffic on the new version (%)")).to_have_value("75")
    page.get_by_text("As a warroom block").click()
    expect(page.locator(".plan-block pre")).to_contain_text('"action": "rollout"')
    page.screenshot(path="/tmp/deployment-plan-1280.png", full_page=True)
