"""The report page after the review: both signed versions listed with their time and what
changed, the newer one downloadable and verifiable in the browser. Screenshots go to
/tmp/screens/ for a person to look at."""

from datetime import date
from pathlib import Path

import pytest

from deployments import services as deployment_services
from incidents import review
from reports import services
from reports.models import ReportJob

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("/tmp/screens")


def _signed(deployment, user) -> ReportJob:
    job, _ = services.request_report(deployment.pk, user)
    assert services.claim_report_job(job.pk)
    return services.run_report_job(job.pk)


def test_the_report_page_lists_each_version_and_the_newest_verifies(crew, login, tmp_path):
    deployment, people = crew
    lead = people["lead"]
    for state in ("scheduled", "in_progress"):
        deployment_services.change_state(deployment.pk, lead, state)
    deployment_services.change_state(deployment.pk, lead, "completed", override_reason="nothing was ticked in this test")
    jobs = [_signed(deployment, people["qa"])]
    review.save_review(
        deployment.pk, people["qa"], notes="", lessons_learned="Warm the cache first.", follow_up_status="open", revision=0
    )
    review.add_action_item(
        deployment.pk, lead, text="Automate the warm-up", owner_id=people["devops"].pk, due_date=date(2031, 5, 14)
    )
    try:
        page = login("observer")
        page.goto(f"/reports/{deployment.pk}/")
        notice = page.locator("#versions .rb-notice")
        assert "make a signed PDF to issue version 2" in notice.inner_text()
        jobs.append(_signed(deployment, lead))
        page.reload()
        versions = page.locator("#versions li")
        assert versions.count() == 2
        assert (
            versions.nth(0).inner_text().startswith("Version 2")
            and "post-deployment review added" in versions.nth(0).inner_text()
        )
        assert versions.nth(1).inner_text().startswith("Version 1") and "first version" in versions.nth(1).inner_text()
        assert page.locator("#versions .rb-notice").count() == 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "report-versions.png"), full_page=True)

        with page.expect_download() as download:
            versions.nth(0).get_by_role("link", name="Download PDF").click()
        path = tmp_path / "v2.pdf"
        download.value.save_as(path)
        page.goto("/reports/verify/")
        page.set_input_files("input[type=file]", str(path))
        page.get_by_role("button", name="Verify").click()
        body = page.locator("main").inner_text()
        assert "It is version 2 of the report." in body, body
        page.screenshot(path=str(SHOTS / "report-verify-v2.png"), full_page=True)

        page.goto(f"/deployments/{deployment.pk}/review/")
        page.screenshot(path=str(SHOTS / "review-page.png"), full_page=True)
    finally:
        for job in jobs:
            job.file.delete(save=False)
