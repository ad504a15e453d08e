"""One report, any format: the entry point of the views, the command, the worker and the bench."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.text import slugify

from deployments.checkpoints import take_checkpoint
from deployments.models import CheckpointReason
from reports import rendering, signing
from reports.record import build_record

FORMATS = {
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
}


@dataclass
class Export:
    content: bytes
    filename: str
    content_type: str
    record: dict
    pages: int | None = None


def report_filename(record: dict, extension: str) -> str:
    d = record["deployment"]
    stamp = record["generated_at"][:16].replace(":", "").replace("-", "").replace("T", "-")
    interim = "-interim" if record["interim"] else ""
    return f"{slugify(d['name']) or 'deployment'}-{d['id']}-report-{stamp}{interim}.{extension}"


def export_report(
    deployment_id: int, fmt: str, *, paper: str | None = None, progress=None, zone: str | None = None, version=None
) -> Export:
    """Build the record and render it; a PDF is signed before it is returned. ``zone``: the
    time zone the reader picked (default: the deployment's). ``version(record) -> dict | None``:
    the report version this file is (reports.services.assign_report_version), written into the
    record before it is rendered, so the signed PDF and its attachment say which version they are."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    report = progress or (lambda percent, stage: None)
    report(5, "Collecting the record")
    record = build_record(deployment_id, zone=zone)
    if version is not None:
        record["version"] = json.loads(json.dumps(version(record), cls=DjangoJSONEncoder))
    if fmt == "json":
        content, pages = rendering.render_json(record), None
    elif fmt == "md":
        content, pages = rendering.render_markdown(record).encode(), None
    else:
        pdf = rendering.render_pdf(record, paper=paper or settings.REPORT_PAPER, progress=report)
        report(85, "Signing")
        content, pages = signing.sign_pdf(pdf.content), pdf.pages
        chain = record["chain"]
        if chain["intact"] and chain["count"]:
            # The head this report quotes, signed and kept apart from the events it guards.
            take_checkpoint(deployment_id, reason=CheckpointReason.REPORT, seq=chain["count"], head_hash=chain["final_hash"])
    return Export(content, report_filename(record, fmt), FORMATS[fmt], record, pages)
