"""Turn a record (reports.record.build_record) into JSON, Markdown, or an unsigned PDF.

The PDF is HTML with print CSS rendered by WeasyPrint, with the JSON record embedded
as a file attachment. Signing is separate (reports.signing), so the same renderer
serves the signed download, the command line and the benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from checklists.models import ItemKind
from deployments.timeline import timeline_svg
from reports import formatting
from reports.record import ATTACHMENT_NAME

# Rows per timeline picture: one picture must fit on one page, it cannot be split.
TIMELINE_ROWS_PER_PICTURE = 45
TIMELINE_TITLE_MAX = 38

PAGE_SIZES = {"a4": "A4", "letter": "letter"}

# WeasyPrint logs every layout pass of every page at INFO (hundreds of lines per report).

Progress = Callable[[int, str], None]


def render_json(record: dict) -> bytes:
    return json.dumps(record, indent=2, ensure_ascii=False).encode()


# --- PDF -------------------------------------------------------------------------------


@dataclass
class RenderedPdf:
    content: bytes
    pages: int


@dataclass
class _TimelineStep:
    """What deployments.timeline.timeline_svg reads from a step, rebuilt from the record."""

    title: str
    start: datetime | None
    end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None

    def planned_start(self, t0):
        return self.start

    def planned_end(self, t0):
        return self.end


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def timeline_pictures(record: dict) -> list[str]:
    """Planned vs actual per step, as SVGs of at most TIMELINE_ROWS_PER_PICTURE rows each."""
    d = record["deployment"]
    steps = [
        _TimelineStep(
            # timeline_svg leaves 260 px for a label: longer titles would run off the left edge.
            title=s["title"] if len(s["title"]) <= TIMELINE_TITLE_MAX else s["title"][: TIMELINE_TITLE_MAX - 1] + "…",
            start=_when(s["planned_start"]),
            end=_when(s["planned_end"]),
            actual_start=_when(s["actual_start"]),
            actual_end=_when(s["actual_end"]),
        )
        for phase in record["phases"]
        for s in phase["steps"]
        if s["planned_start"] or s["actual_start"]
    ]
    deployment = SimpleNamespace(planned_t0=_when(d["planned_t0"]))
    # Finished: draw up to the end, not up to the moment the report was made.
    now = _when(d["finished_at"]) or _when(record["generated_at"])
    if not steps:
        return [timeline_svg(deployment, [], now)]
    chunks = [steps[i : i + TIMELINE_ROWS_PER_PICTURE] for i in range(0, len(steps), TIMELINE_ROWS_PER_PICTURE)]
    # Each picture titles itself with id="timeline-title"; ids must be unique in one document.
    return [
        mark_safe(  # noqa: S308
            str(timeline_svg(deployment, chunk, now, axis_steps=steps)).replace("timeline-title", f"timeline-title-{n}")
        )
        for n, chunk in enumerate(chunks, start=1)
    ]


def _mark(item: dict) -> str:
    if item["kind"] == ItemKind.CHECK:
        return "☑" if item["done"] else "☐"
    return "✎" if item["kind"] == ItemKind.FIELD else "◆"


# The event log appendix is one paragraph per event, not a table row: WeasyPrint makes a box
# of every table cell and walks every row of a table on each page it fills, so the
# 2,000-event table was half of a big report's render time. A paragraph starts with one
# monospace run, "seq  when  hash", padded to the same width on every line, so those three
# read as columns; who, what kind and what follow as text, and a long line wraps under the
# text, past the stamp (a hanging indent as wide as the stamp).
EVENT_STAMP_PT = 7  # the stamp's font size, as report.css sets it for .event code
MONO_ADVANCE = 0.602  # DejaVu Sans Mono: every glyph is 1233/2048 em wide
EVENT_HASH_CHARS = 12


@dataclass
class EventLine:
    stamp: str
    actor: str
    kind: str
    summary: str


def event_lines(events: list[dict], zone: str) -> tuple[EventLine, list[EventLine], float]:
    """The appendix's column heading, a line per event and the hanging indent (pt) of both."""
    stamps = [
        (str(event["seq"]), formatting.local_time(event["created_at"], zone, short=True), event["hash"] or "") for event in events
    ]
    seq_width = max([1, *(len(seq) for seq, _, _ in stamps)])
    when_width = max([4, *(len(when) for _, when, _ in stamps)])

    def stamp(seq: str, when: str, hash_: str) -> str:
        return f"{seq:>{seq_width}}  {when:<{when_width}}  {hash_[:EVENT_HASH_CHARS]:<{EVENT_HASH_CHARS}}"

    heading = EventLine(stamp("#", "When", "Hash"), "Who", "Kind", "What")
    lines = [
        EventLine(stamp(*parts), event["actor_label"], event["action"], event["summary"])
        for parts, event in zip(stamps, events, strict=True)
    ]
    indent = (len(heading.stamp) + 1) * MONO_ADVANCE * EVENT_STAMP_PT
    return heading, lines, round(indent, 2)


def render_html(record: dict, *, paper: str) -> str:
    steps = [step for phase in record["phases"] for step in phase["steps"]]
    depths = set()
    for step in steps:
        for item in step["items"]:
            item["mark"] = _mark(item)
            depths.add(item["depth"])
    zone = record.get("display_zone") or record["deployment"]["timezone"]
    event_heading, events, event_indent = event_lines(record["events"], zone)
    context = {
        "r": record,
        "d": record["deployment"],
        "s": record["summary"],
        "zone": zone,
        "event_heading": event_heading,
        "events": events,
        "event_indent": event_indent,
        "event_stamp_pt": EVENT_STAMP_PT,
        "page_size": PAGE_SIZES[paper],
        # Sub-items are indented by depth; CSS cannot compute that from a class name.
        "depth_indents": [(depth, round(1.8 + 4.5 * depth, 1)) for depth in sorted(depths)],
        "timelines": timeline_pictures(record),
        "attachment_name": ATTACHMENT_NAME,
        "late_count": len(record["summary"]["late_steps"]),
    }
    return render_to_string("reports/pdf/report.html", context)


def render_pdf(record: dict, *, paper: str, progress: Progress | None = None) -> RenderedPdf:
    import weasyprint  # noqa: PLC0415 (heavy (pango, fonts): only the processes that render pay for it)

    report = progress or (lambda percent, stage: None)
    report(20, "Laying out pages")
    # The HTML string is only needed until it is parsed: it is not kept while pages are laid out.
    document = weasyprint.HTML(string=render_html(record, paper=paper), base_url=None).render()
    pages = len(document.pages)
    report(60, f"Writing {pages} pages")
    attachment = weasyprint.Attachment(
        string=render_json(record),
        name=ATTACHMENT_NAME,
        description="Warroom structured record: deployment, items, decisions, sign-offs, events with hashes",
        relationship="Data",
    )
    content = document.write_pdf(attachments=[attachment])
    return RenderedPdf(content=content, pages=pages)


# --- Markdown --------------------------------------------------------------------------


def _without_html(value):
    """The record with "<" and ">" in every string as entities: Markdown passes raw HTML through,
    so a "<script>" typed into a note, name or statement would run in whatever renders the file.
    Entities show as the characters typed. Only the data is escaped, not the Markdown around it."""
    if isinstance(value, str):
        return value.replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {key: _without_html(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_html(item) for item in value]
    return value


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") or " "


def _md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _md_item(item: dict, zone: str) -> list[str]:
    indent = "  " * item["depth"]
    who = ""
    if item["done_by"] or item["done_at"]:
        who = " — " + ", ".join(p for p in (item["done_by"], formatting.local_time(item["done_at"], zone)) if p)
    number = f"**{item['number']}** " if item["number"] and item["number"] not in item["text"] else ""
    signed = item.get("sign_off")
    if signed:
        at = formatting.local_time(signed["signed_at"], zone)
        line = f"{indent}- **{item['text']}:** signed off by {signed['name']} — {signed['outcome_label']}, {at}"
    elif item["kind"] == ItemKind.CHECK:
        line = f"{indent}- [{'x' if item['done'] else ' '}] {number}{item['text']}{who}"
    elif item["kind"] == ItemKind.FIELD:
        line = f"{indent}- **{item['text']}:** {item['value'] or '_______'}{who}"
    else:
        options = " ".join(f"{'☑' if option == item['value'] else '☐'} {option}" for option in item["options"])
        line = f"{indent}- **{item['text']}:** {options}{who}"
    lines = [line.replace("\n", " ")]
    if item["note"]:
        lines += [f"{indent}  > {note_line}" for note_line in item["note"].splitlines()]
    return lines


def _md_version(version: dict | None) -> list[str]:
    if not version:
        return []
    follows = version.get("follows")
    after = f" (follows version {follows['number']}, which covered {follows['events']} events)" if follows else ""
    return [f"- **Report version:** {version['number']}: {version['changes']}{after}"]


def render_markdown(record: dict) -> str:
    record = _without_html(record)
    d, s = record["deployment"], record["summary"]
    zone = record.get("display_zone") or d["timezone"]

    def at(value):
        return formatting.local_time(value, zone) or "—"

    out = [f"# {d['name']} — deployment report", "", f"Times are shown in {zone}.", ""]
    if record["interim"]:
        out += [f"> **INTERIM REPORT**: the deployment is {d['state_label'].lower()}; this is not its final record.", ""]
    signed = s["signed_outcome"]
    out += [
        f"- **Service:** {d['service']}",
        f"- **Version:** {d['version']}",
        f"- **Environment:** {d['environment']}",
        f"- **Runbook:** {d['runbook']}",
        f"- **Window:** {at(d['window_start'])} – {at(d['window_end'])}" if d["window_start"] else "- **Window:** not set",
        f"- **T-0 planned:** {at(d['planned_t0'])}",
        f"- **T-0 actual:** {at(d['actual_t0'])}",
        f"- **Finished:** {at(d['finished_at'])}",
        f"- **Outcome:** {s['headline']}" + (f" (signed off: {signed['label']})" if signed else ""),
        f"- **Generated:** {at(record['generated_at'])}",
        *_md_version(record.get("version")),
        "",
        "## Summary",
        "",
        f"- Duration planned {formatting.duration(s['planned_minutes'])}, actual {formatting.duration(s['actual_minutes'])}",
        f"- Items ticked: {s['items_done']} / {s['items_total']}",
        f"- Steps done: {s['steps_done']} / {s['steps_total']}; late: {len(s['late_steps'])}",
    ]
    out += [f"- {section['title']}: {section['summary']}" for section in record["sections"]]
    out.append("")
    for phase in record["phases"]:
        out += [f"## {phase['title']}", ""]
        for step in phase["steps"]:
            title = f"{step['number']} {step['title']}".strip()
            out += [f"### {title}", ""]
            meta = []
            if step["role"]:
                meta.append(f"Role: {step['role']}")
            if step["planned_start"]:
                meta.append(f"planned {formatting.offset(step['offset_minutes'])} ({at(step['planned_start'])})")
            if step["actual_start"]:
                meta.append(f"actual {at(step['actual_start'])} – {at(step['actual_end'])}")
            if step["late_minutes"]:
                meta.append(f"**LATE** by {formatting.duration(step['late_minutes'])}")
            if meta:
                out += ["_" + " · ".join(meta) + "_", ""]
            for item in step["items"]:
                out += _md_item(item, zone)
            out.append("")
    for section in record["sections"]:
        out += [f"## {section['title']}", ""]
        for passage in section.get("passages", []):
            quoted = [f"> {line}".rstrip() for line in passage["text"].splitlines()]
            out += [f"**{passage['title']}**", "", *quoted, ""]
        if not section["tables"] and not section.get("passages"):
            out += [section["empty_text"], ""]
        for table in section["tables"]:
            out += [f"**{table['caption']}**", "", *_md_table(table["columns"], table["rows"]), ""]
            if table["note"]:
                out += [f"_{table['note']}_", ""]
    out += ["## Sign-offs", ""]
    for signoff in record["sign_offs"]["signed"]:
        out += [
            f"- **{signoff['role']}:** {signoff['name']} — {signoff['outcome_label']}, signed {at(signoff['signed_at'])}",
            *[f"  > {line}" for line in signoff["statement"].splitlines()],
        ]
    for role in record["sign_offs"]["missing"]:
        out.append(f"- **{role}:** not signed")
    if not record["sign_offs"]["signed"] and not record["sign_offs"]["missing"]:
        out.append("No sign-offs were requested.")
    chain = record["chain"]
    out += [
        "",
        "## Event log",
        "",
        f"{chain['count']} events; final hash `{chain['final_hash'] or '—'}`"
        + ("" if chain["intact"] else f" — **the chain did not verify: {chain['problem']}**"),
        "",
    ]
    return "\n".join(out)
