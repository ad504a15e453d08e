"""The signed PDF: what it says (read back with pdftotext), its signature (validated with
pyHanko), the record it carries, paper sizes, interim marking and long runbooks."""

import json
import re
import subprocess
from datetime import timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from checklists.models import ItemKind
from deployments.models import Deployment, Event, Item
from deployments.services import reanchor_t0, update_item
from reports import services
from reports.exports import export_report
from reports.models import Outcome
from reports.record import ATTACHMENT_NAME
from reports.signing import SIGNATURE_FIELD, signing_identity
from reports.verification import _embedded_files
from tests.factories import PASSWORD, make_deployment, make_user, staff_deployment
from tests.reports.conftest import make_report_version, pdf_pages_text


@pytest.fixture
def signed_off(finished_crew):
    deployment, people = finished_crew
    services.sign_off(
        deployment.pk,
        people["qa"],
        role_name="QA Lead",
        outcome=Outcome.SUCCESS_WITH_ISSUES,
        statement="Verification passed; a cosmetic glitch is logged as JIRA-88.",
        password=PASSWORD,
    )
    return deployment, people


def test_pdf_reads_like_the_deployment(signed_off, tmp_path):
    deployment, _ = signed_off
    made = export_report(deployment.pk, "pdf")
    pages = pdf_pages_text(made.content, tmp_path)
    text = "\n".join(pages)
    assert made.pages == len(pages)
    # Cover: what, where, when, outcome.
    for expected in [
        "Expense Accounts 3.4",
        "expense-accounts",
        "3.4.0",
        "production",
        "T-0 planned",
        "T-0 actual",
        "Maintenance window",
        "Completed · signed off: Success with minor issues",
    ]:
        assert expected in pages[0], expected
    # Contents with page numbers, summary, timeline, every phase and step.
    assert "Contents" in pages[1] and "The runbook as run" in pages[1]
    for expected in [
        "Summary",
        "ITEMS TICKED",
        "Timeline: planned vs actual",
        "Pre-deployment checks",
        "1.1 Pre-deployment step 1",
        "Verify component 1.1.2",
        "Screenshot attached to JIRA-1234",
        "Quinn Assurance",
        "02:45",
        "LATE",
        "Go/No-Go decision",
        "Gates and decisions",
        "No task runs were recorded.",
        "No rollout was recorded.",
        "No incidents were recorded.",
    ]:
        assert expected in text, expected
    # Sign-offs with name, role, outcome, statement; the chain's count and final hash.
    assert "QA Lead: Quinn Assurance" in text and "cosmetic glitch is logged as JIRA-88" in text
    assert "Product Owner: not signed" in text
    deployment.refresh_from_db()
    assert deployment.last_event_hash in text.replace("\n", "").replace(" ", "")
    # Running header and page numbers on every page after the cover.
    for number, page in enumerate(pages[1:], start=2):
        assert "Expense Accounts 3.4" in page and "Completed" in page
        assert f"Page {number} of {len(pages)}" in page
    assert "INTERIM" not in text


def test_signature_is_a_valid_pades_signature_by_this_warroom(signed_off):
    deployment, _ = signed_off
    made = export_report(deployment.pk, "pdf")
    reader = PdfFileReader(BytesIO(made.content))
    (signature,) = reader.embedded_signatures
    assert signature.field_name == SIGNATURE_FIELD
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    identity = signing_identity()
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[identity.certificate], allow_fetching=False))
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.signing_cert.sha256_fingerprint.replace(" ", "").lower() == identity.fingerprint


def test_pdf_carries_its_structured_record(signed_off):
    deployment, _ = signed_off
    made = export_report(deployment.pk, "pdf")
    record = json.loads(_embedded_files(PdfFileReader(BytesIO(made.content)))[ATTACHMENT_NAME])
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert record["chain"]["final_hash"] == deployment.last_event_hash
    assert record["chain"]["count"] == deployment.event_count == len(record["events"])
    assert record["events"][-1]["action"] == "signoff.given"
    assert record["sign_offs"]["signed"][0]["statement"].startswith("Verification passed")
    assert record == made.record  # the attachment is exactly what the pages were printed from


def test_letter_and_a4(finished_crew, tmp_path):
    deployment, _ = finished_crew
    sizes = {}
    for paper in ("a4", "letter"):
        target = tmp_path / f"{paper}.pdf"
        target.write_bytes(export_report(deployment.pk, "pdf", paper=paper).content)
        info = subprocess.run(["pdfinfo", str(target)], check=True, capture_output=True, text=True).stdout
        sizes[paper] = next(line for line in info.splitlines() if line.startswith("Page size"))
    assert "(A4)" in sizes["a4"] and "(letter)" in sizes["letter"]


def test_running_deployment_is_interim_on_every_page(report_crew, tmp_path):
    deployment, _ = report_crew
    made = export_report(deployment.pk, "pdf")
    pages = pdf_pages_text(made.content, tmp_path)
    assert len(pages) > 3
    for page in pages:
        assert "INTERIM" in page
    assert made.record["interim"] is True
    assert "interim" in made.filename
    assert "Interim: in progress" in pages[0]


def test_long_runbook_paginates_with_repeated_headers(db, tmp_path):
    """A step with more items than fit on a page: its table header repeats and no row is cut."""
    lead = make_user("lead")
    deployment = make_deployment(lead=lead, version=make_report_version(steps_per_phase=2, items_per_step=70))
    staff_deployment(deployment, lead)
    made = export_report(deployment.pk, "pdf")
    pages = pdf_pages_text(made.content, tmp_path)
    step_pages = [page for page in pages if "Verify component 1.1." in page]
    assert len(step_pages) >= 2
    for page in step_pages:
        header = next(line for line in page.splitlines() if "Item" in line and "Result" in line)
        assert "By" in header and "When" in header
    # Every item appears exactly once: no row split across two pages, none lost.
    text = "\n".join(pages)
    for number in (1, 35, 70):
        assert text.count(f"Verify component 1.1.{number}\n") + text.count(f"Verify component 1.1.{number} ") == 1


EVENT_LINE = re.compile(r"^\s*(\d+)\s+(\d\d \w{3} \d\d:\d\d:\d\d \S+)\s+([0-9a-f]{12})\s+(.*)$")


def test_event_log_appendix_lists_every_event_once_with_its_time_and_zone(report_crew, tmp_path):
    """An audit record is complete: 300 events, each in the appendix exactly once, in order,
    with its local time and zone, its hash and who did what."""
    deployment, people = report_crew
    item = Item.objects.filter(deployment=deployment, is_group=False, kind=ItemKind.CHECK).order_by("id").first()
    round_no = 0
    while Deployment.objects.get(pk=deployment.pk).event_count < 299:
        item.refresh_from_db()
        update_item(item.pk, people["qa"], revision=item.revision, checked=True, note=f"Evidence in JIRA-{round_no}")
        round_no += 1
    reason = "<b>DNS</b> & vendor"
    reanchor_t0(deployment.pk, people["lead"], deployment.planned_t0 + timedelta(minutes=5), reason=reason, confirm_due=True)
    events = list(Event.objects.filter(deployment=deployment).order_by("seq"))
    assert len(events) == 300

    made = export_report(deployment.pk, "pdf")
    pages = pdf_pages_text(made.content, tmp_path)
    start = next(n for n, page in enumerate(pages) if "Appendix: event log" in page and "....." not in page)
    lines = [match.groups() for page in pages[start:] for line in page.splitlines() if (match := EVENT_LINE.match(line))]

    berlin = ZoneInfo("Europe/Berlin")
    assert [int(seq) for seq, *_ in lines] == [event.seq for event in events]  # each once, in order, none lost
    for (_, when, hash_prefix, rest), event in zip(lines, events, strict=True):
        assert when == event.created_at.astimezone(berlin).strftime("%d %b %H:%M:%S %Z"), event.seq
        assert when.endswith((" CET", " CEST"))
        assert hash_prefix == event.hash[:12]
        assert rest.startswith(event.actor_label), event.seq
    assert reason in lines[-1][3]  # typed text is shown as typed, not taken as markup
