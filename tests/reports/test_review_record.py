"""The post-deployment review in the signed record: the PDF, the Markdown and the JSON carry
its lessons learned and action items (who, by when, in what state); a report made after the
review is a new version, and every version still verifies."""

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from incidents import review
from reports import services
from reports.exports import export_report
from reports.models import JobState, ReportJob
from reports.verification import Verdict, verify_report
from tests.reports.conftest import pdf_pages_text
from tests.reports.test_pdf_layout import _words

XSS = "<img src=x onerror=alert(1)>"
LESSONS = "Warm the search cache before go-live.\nRehearse the rollback with production-sized data."
SHOTS = Path("/tmp/screens")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def write_review(deployment, people):
    """The QA lead writes the review; the lead and QA add an action item each."""
    review.save_review(
        deployment.pk,
        people["qa"],
        notes=f"Met the morning after. {XSS}",
        lessons_learned=LESSONS,
        follow_up_status="in_progress",
        revision=0,
    )
    review.add_action_item(
        deployment.pk,
        people["lead"],
        text="Automate the cache warm-up",
        owner_id=people["devops"].pk,
        due_date=date(2031, 5, 14),
    )
    review.add_action_item(
        deployment.pk, people["qa"], text=f"Check the alert text {XSS}", owner_id=people["qa"].pk, due_date=date(2031, 6, 1)
    )


@pytest.fixture
def reviewed(finished_crew):
    deployment, people = finished_crew
    write_review(deployment, people)
    return deployment, people


def signed_version(deployment, user, *, paper="a4") -> ReportJob:
    """A signed PDF made the way the worker makes it: request, claim, run."""
    job, _ = services.request_report(deployment.pk, user, paper=paper)
    assert services.claim_report_job(job.pk)
    job = services.run_report_job(job.pk)
    assert job.state == JobState.DONE, job.error
    return job


def _file(job: ReportJob) -> bytes:
    with job.file.open("rb") as fh:
        return fh.read()


def _line_with(text: str, needle: str) -> str:
    return next((line for line in text.splitlines() if needle in line), "")


def _review_section(record: dict) -> dict:
    return next(s for s in record["sections"] if s["key"] == "review")


# --- the review in every format -----------------------------------------------------------------


def test_the_signed_pdf_carries_the_lessons_and_each_action_item_with_owner_and_due(reviewed, media, tmp_path):
    deployment, people = reviewed
    job = signed_version(deployment, people["qa"])
    pdf = _file(job)
    assert verify_report(pdf).verdict is Verdict.AUTHENTIC
    text = "\n".join(pdf_pages_text(pdf, tmp_path))
    assert "Post-deployment review" in text and "Lessons learned" in text
    assert "Warm the search cache before go-live." in text
    assert "Rehearse the rollback with production-sized data." in text
    # One table row per action item: what, who, by when, in what state.
    first = _line_with(text, "Automate the cache warm-up")
    assert "Devi Ops" in first and "2031-05-14" in first and "Open" in first, first
    second = _line_with(text, "Check the alert text")
    assert "Quinn Assurance" in second and "2031-06-01" in second, second
    assert "Follow-up" in _line_with(text, "In progress")
    # What was typed, as typed: the markup is text on the page, in the notes and in the item.
    assert f"Check the alert text {XSS}" in second
    assert f"Met the morning after. {XSS}" in text


def test_markdown_carries_the_review_with_markup_escaped(reviewed):
    deployment, _ = reviewed
    markdown = export_report(deployment.pk, "md").content.decode()
    section = markdown[markdown.index("## Post-deployment review") : markdown.index("## Sign-offs")]
    assert "**Lessons learned**\n\n> Warm the search cache before go-live.\n> Rehearse the rollback" in section
    assert "| Action | Owner | Due | State | Done |" in section
    assert "| Automate the cache warm-up | Devi Ops | 2031-05-14 | Open |" in section
    assert "| Check the alert text &lt;img src=x onerror=alert(1)&gt; | Quinn Assurance | 2031-06-01 | Open |" in section
    assert "<img" not in markdown  # a Markdown viewer would render it
    assert "- Post-deployment review: Follow-up in progress; 2 action items, 2 not done; lessons learned recorded" in markdown


def test_json_carries_the_review_as_data(reviewed):
    deployment, _ = reviewed
    record = json.loads(export_report(deployment.pk, "json").content)
    [data] = _review_section(record)["records"]
    assert data["lessons_learned"] == LESSONS
    assert data["notes"] == f"Met the morning after. {XSS}"  # data, as typed: escaping is the reader's job
    assert (data["follow_up_status"], data["follow_up_status_label"]) == ("in_progress", "In progress")
    assert (data["outcome"], data["updated_by"]) == ("completed", "Quinn Assurance")
    assert data["action_items"] == [
        {
            "text": "Automate the cache warm-up",
            "owner": "Devi Ops",
            "due_date": "2031-05-14",
            "status": "open",
            "status_label": "Open",
            "done_at": None,
        },
        {
            "text": f"Check the alert text {XSS}",
            "owner": "Quinn Assurance",
            "due_date": "2031-06-01",
            "status": "open",
            "status_label": "Open",
            "done_at": None,
        },
    ]
    phases = [p["phase"] for p in data["planned_vs_actual"]["phases"]]
    assert phases[:3] == ["Pre-deployment checks", "Deployment", "Verification"]


def test_an_action_item_done_shows_its_state_in_words(reviewed):
    deployment, people = reviewed
    item = review.review_data(deployment)["action_items"][0]
    review.set_action_status(item["id"], people["devops"], "done")
    markdown = export_report(deployment.pk, "md").content.decode()
    row = _line_with(markdown, "| Automate the cache warm-up |")
    assert "| Done |" in row and "| done |" not in row


def test_without_a_review_the_section_says_so(finished_crew):
    deployment, _ = finished_crew
    record = json.loads(export_report(deployment.pk, "json").content)
    section = _review_section(record)
    assert section["records"] == [] and section["summary"] == "No post-deployment review was recorded."


# --- versions ------------------------------------------------------------------------------------


def test_resigning_after_the_review_is_version_2_and_both_versions_verify(finished_crew, media, tmp_path):
    deployment, people = finished_crew
    first = signed_version(deployment, people["qa"])
    v1 = _file(first)
    assert (first.version, first.changes) == (1, "first version of the final report")

    write_review(deployment, people)
    second = signed_version(deployment, people["lead"])
    v2 = _file(second)
    assert second.version == 2 and "post-deployment review added" in second.changes
    assert "sign-offs" not in second.changes and "checklist" not in second.changes  # only the review changed

    # Nothing earlier was overwritten: version 1's row and file are as they were.
    first.refresh_from_db()
    assert first.version == 1 and first.file.name != second.file.name
    assert _file(first) == v1 and first.final_hash != second.final_hash

    one, two = verify_report(v1), verify_report(v2)
    assert one.verdict is Verdict.AUTHENTIC, one.as_text()
    assert two.verdict is Verdict.AUTHENTIC, two.as_text()
    assert "version 1 of the report" in one.headline and "version 2 is the latest" in one.as_text()
    assert "version 2 of the report" in two.headline
    assert ("Report version", "1: first version of the final report") in one.facts
    assert any(label == "Report version" and value.startswith("2: post-deployment review added") for label, value in two.facts)

    # Each file says on its cover which version it is; only the second carries the review.
    text1, text2 = "\n".join(pdf_pages_text(v1, tmp_path)), "\n".join(pdf_pages_text(v2, tmp_path))
    assert "Version 1: first version of the final report" in text1 and "Warm the search cache" not in text1
    assert "Version 2: post-deployment review added" in text2 and "Warm the search cache" in text2

    # The page lists both, with their time and what changed.
    page = Client()
    page.force_login(people["observer"])
    html = page.get(f"/reports/{deployment.pk}/").content.decode()
    assert "Version 1" in html and "Version 2" in html
    assert "first version of the final report" in html and "post-deployment review added" in html


def test_a_copy_of_the_same_record_is_the_same_version(finished_crew, media):
    deployment, people = finished_crew
    a4 = signed_version(deployment, people["qa"])
    letter = signed_version(deployment, people["qa"], paper="letter")
    assert (a4.version, letter.version) == (1, 1) and a4.sha256 != letter.sha256
    assert verify_report(_file(letter)).verdict is Verdict.AUTHENTIC


def test_an_earlier_version_that_was_altered_is_still_modified(finished_crew, media):
    deployment, people = finished_crew
    v1 = _file(signed_version(deployment, people["qa"]))
    write_review(deployment, people)
    signed_version(deployment, people["qa"])
    at = v1.index(b"/Title")
    altered = v1[:at] + v1[at:].replace(b"Expense", b"Expanse", 1)
    assert verify_report(altered).verdict is Verdict.MODIFIED


def test_an_outsider_learns_the_version_not_what_followed(finished_crew, media):
    deployment, people = finished_crew
    v1 = _file(signed_version(deployment, people["qa"]))
    write_review(deployment, people)
    signed_version(deployment, people["qa"])
    seen = verify_report(v1, viewer=people["outsider"])
    assert seen.verdict is Verdict.AUTHENTIC
    assert "version 1 of the report" in seen.headline and "Events in the database" not in dict(seen.facts)


def test_interim_reports_are_not_versions(report_crew, media):
    deployment, people = report_crew
    job = signed_version(deployment, people["qa"])
    assert job.interim and job.version is None


# --- how the review page of the PDF looks ----------------------------------------------------------


LONG_ITEM = (
    "Write down, in the runbook itself and not only in the wiki, which cache keys the search service needs warm "
    "before traffic arrives, who warms them, how long it takes on production data, and what to watch while it runs"
)
LONG_TOKEN = "https://wiki.example.com/display/OPS/expense-accounts/post-deployment-reviews/2026/release-3-4-cache-warmup"


def test_the_review_pages_render_within_the_margins(reviewed, tmp_path):
    deployment, people = reviewed
    review.add_action_item(deployment.pk, people["lead"], text=LONG_ITEM, owner_id=people["dba"].pk, due_date=date(2031, 7, 1))
    review.save_review(
        deployment.pk,
        people["qa"],
        notes=f"Minutes: {LONG_TOKEN}",
        lessons_learned=LESSONS,
        follow_up_status="in_progress",
    )
    pdf = export_report(deployment.pk, "pdf").content
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    pages = pdf_pages_text(pdf, tmp_path)
    first = next(n for n, page in enumerate(pages, start=1) if "Lessons learned" in page)
    last = next(n for n, page in enumerate(pages, start=1) if "Planned vs actual, per phase" in page)

    SHOTS.mkdir(parents=True, exist_ok=True)
    for number in range(first, last + 1):
        prefix = SHOTS / f"report-review-page-{number - first + 1}"
        subprocess.run(
            ["pdftoppm", "-f", str(number), "-l", str(number), "-png", "-r", "80", "-singlefile", str(path), prefix],
            check=True,
        )
        png = prefix.with_suffix(".png")
        assert png.exists()
        with Image.open(png) as image:
            gray = image.convert("L")
            width, height = gray.size
            dark = sum(gray.histogram()[:128])  # pixels darker than mid-grey
        assert width > 500 and height > 700
        # A page of text and table rules, not a white sheet: at least 1 % of it is ink.
        assert dark > width * height // 100, (number, dark)

    # Long text wraps inside the page: no word reaches into the right margin, and all of it is there.
    for number, (page_width, _, words) in enumerate(_words(pdf, tmp_path), start=1):
        over = [text for _, _, x1, _, text in words if x1 > page_width - 10 * 72 / 25.4]
        assert not over, f"page {number}: text past the margin: {over[:5]}"
    text = "\n".join(pages[first - 1 : last])
    assert set(LONG_ITEM.replace(",", "").split()) <= set(text.replace(",", "").split())  # wrapped, not cut off
    assert LONG_TOKEN in "".join(text.replace("\u200b", "").split())
    # A heading is never the last thing on its page.
    for page in pages[first - 1 : last]:
        tail = [line.strip() for line in page.splitlines() if line.strip()][-2]  # the last line is the footer
        assert tail not in ("Post-deployment review", "Lessons learned", "Review notes", "Action items"), tail
