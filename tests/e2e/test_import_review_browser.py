"""From an uploaded runbook to a war room in the browser: upload, review (untick one finding), import,
create a deployment — its required approvals, gate with criteria, contacts and draft rollout are
there without any editor change."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from deployments.models import Deployment
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

PAYMENTS = Path(__file__).resolve().parents[1] / "checklists" / "runbooks" / "change-request-payments.md"


def test_an_uploaded_runbook_reviewed_and_accepted_becomes_a_war_room(login):
    lead = make_user("lead")  # a release manager: may create deployments
    lead.is_staff = True  # and import runbooks
    lead.save(update_fields=["is_staff"])
    page = login("lead")
    page.goto("/runbooks/import/")
    page.get_by_label("Runbook file (Markdown)").set_input_files(str(PAYMENTS))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Accept or correct it")).to_be_visible()
    review = page.locator("form.rb-review")
    expect(review).to_contain_text("reconciliation shows zero mismatched ledger rows")
    expect(review.locator('input[name="keep"]:not(:checked)')).to_have_count(0)
    review.get_by_label("Head of Engineering (after 30 min) via phone").uncheck()  # not a contact for this team
    page.get_by_role("button", name="Import with these choices").click()
    page.wait_for_url("**/runbooks/versions/*/")
    expect(page.locator(".messages")).to_contain_text("Left out as you chose: 1")

    page.get_by_role("link", name="New deployment from this version").click()
    page.locator("#id_name").fill("Payments v4.2")
    page.locator("#id_service").fill("payments-api")
    page.locator("#id_version_label").fill("4.2.0")
    page.locator("#id_planned_t0").fill("2030-03-02T02:00")
    page.get_by_role("button", name="Create deployment").click()
    page.wait_for_url("**/deployments/*/people/")  # the lead staffs it next
    deployment = Deployment.objects.get()
    expect(page.locator("ol.contacts")).to_contain_text("Level 1 (0–10 min): Payments on-call")
    page.goto(f"/deployments/{deployment.pk}/")

    approvals = page.locator("#wr-approvals")
    expect(approvals).to_contain_text("3 missing")
    for label in ("Security team sign-off", "Finance Controller: Approved for release", "Product Owner approval"):
        expect(approvals).to_contain_text(label)
    expect(approvals).not_to_contain_text("Engineering Manager:")  # the closing Sign-Off section is the report's
    gate = page.locator(".gate-panel")
    expect(gate).to_have_count(1)
    expect(gate).to_contain_text("Proceed if reconciliation shows zero mismatched ledger rows")
    expect(page.locator("ol.stages li")).to_have_text(["2 % hold 1200 s", "20 % hold 3600 s", "100 % hold 0 s"])
    assert deployment.steps.get(title="Preparation (T-2h)").offset_minutes == -120  # planned times
    assert list(deployment.contacts.order_by("level").values_list("name", flat=True)) == [
        "Payments on-call",
        "Payments team lead",
    ]
