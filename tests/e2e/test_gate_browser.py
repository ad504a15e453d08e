import pytest
from playwright.sync_api import expect

from approvals import services
from approvals.models import Gate, GateRule
from deployments.models import DeploymentRole

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_voters_in_two_browsers_and_a_third_screen_sees_the_decision(crew, login):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    roles = list(
        DeploymentRole.objects.filter(deployment=deployment, name__in=["QA Lead", "Product Owner"]).values_list("pk", flat=True)
    )
    services.configure_gate(gate.pk, people["lead"], voter_role_ids=roles, rule=GateRule.UNANIMOUS)
    screens = {}
    for persona in ("qa", "po", "devops"):
        page = login(persona)
        page.goto(f"/deployments/{deployment.pk}/")
        expect(page.locator("#conn-state")).to_have_text("Live")
        screens[persona] = page
    panel = f"#gate-{gate.pk}"
    # DevOps does not vote on this gate: no buttons for them.
    expect(screens["devops"].locator(panel).get_by_role("button", name="Vote GO")).to_be_hidden()

    screens["qa"].once("dialog", lambda d: d.accept("all verification boxes ticked"))
    screens["qa"].locator(panel).get_by_role("button", name="Vote GO").click()
    expect(screens["devops"].locator(panel)).to_contain_text("Quinn Assurance: GO — all verification boxes ticked")
    expect(screens["devops"].locator(panel)).to_contain_text("Not voted yet: Pat Owner")

    screens["po"].once("dialog", lambda d: d.accept("business signs off"))
    screens["po"].locator(panel).get_by_role("button", name="Vote GO").click()
    expect(screens["devops"].locator(f"{panel} .decision")).to_contain_text("GO — Unanimous GO (2 of 2)")
    expect(screens["devops"].locator(f"#item-{gate.item_id}")).to_contain_text("GO")


def test_no_go_without_reason_is_refused_in_the_browser(crew, login):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    page = login("qa")
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    page.once("dialog", lambda d: d.accept(""))
    page.locator(f"#gate-{gate.pk}").get_by_role("button", name="Vote NO-GO").click()
    expect(page.locator("#toast")).to_have_text("A NO-GO needs a reason.")
    assert not gate.votes.exists()
