"""The PDF's pages: no table runs past the margin, long paths and hashes wrap, headings stay
with what follows them. Positions are read back from the PDF (pdftotext -bbox), not guessed."""

import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from reports.exports import export_report
from rollouts.models import RunState, Target, TaskRun

LONG_PATH = (
    "/var/backups/warroom/expense-accounts/production/2026-11-29T20-00-00Z/expense_accounts_full_dump_before_migration.dump"
)
SHOTS = Path("/tmp/screens")
SHA = "9f2c4e1b7a6d3c8e0f5a2b9c4d7e1f3a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e"


def _words(pdf: bytes, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    html = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True, capture_output=True, text=True).stdout
    pages = []
    for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', html, re.S):
        words = [
            (float(x0), float(y0), float(x1), float(y1), text)
            for x0, y0, x1, y1, text in re.findall(
                r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page.group(3)
            )
        ]
        pages.append((float(page.group(1)), float(page.group(2)), words))
    return pages


@pytest.fixture
def with_long_artifact(finished_crew):
    deployment, people = finished_crew
    target, _ = Target.objects.get_or_create(name="expense-accounts-production-database")
    step = deployment.steps.order_by("id").first()
    now = timezone.now()
    TaskRun.objects.create(
        deployment=deployment,
        step=step,
        target=target,
        action="backup",
        state=RunState.SUCCEEDED,
        started_by=people["lead"],
        started_at=now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=4),
        exit_code=0,
        attempt=1,
        log_line_count=3,
        log_tail=f"pg_dump: writing {LONG_PATH}\nsha256 {SHA}\ndone",
        result={"path": LONG_PATH, "size_bytes": 123_456_789, "sha256": SHA, "verified": True},
    )
    return deployment, people


def test_no_text_past_the_right_margin_and_long_values_wrap_in_full(with_long_artifact, tmp_path):
    deployment, _ = with_long_artifact
    pdf = export_report(deployment.pk, "pdf").content
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "report-layout.pdf").write_bytes(pdf)  # for a person to look at
    pages = _words(pdf, tmp_path)
    assert pages
    for number, (width, _, words) in enumerate(pages, start=1):
        # A4 with at least 10 mm of margin on the right: nothing may reach into it.
        limit = width - 10 * 72 / 25.4
        over = [(text, x1) for _, _, x1, _, text in words if x1 > limit]
        assert not over, f"page {number}: text past the margin: {over[:5]}"
    text = "".join(w[4] for _, _, words in pages for w in words).replace("\u200b", "")
    assert SHA in text  # the whole hash is on the page, wrapped, not cut off
    assert "expense_accounts_full_dump_before_migration.dump" in text
