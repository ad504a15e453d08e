"""Turn a Markdown deployment runbook into a structure Warroom can run as a war room.

Pure Python (no Django) so it can be tested, benchmarked and reused on its own.
The input is whatever people actually upload: exported Confluence pages, hand-made
checklists, CRLF files in Windows-1252. The output is a ``ParsedRunbook``.

Structure
    * The first H1 is the runbook title; without one, the first heading's text
      (that heading keeps its own role too); without any heading, "Untitled runbook".
    * H2 starts a phase. A later H1 is treated as an H2 (documents that use several
      H1s mean them as sections, not as new runbooks).
    * H3 and deeper start a step; a deeper heading under a step simply starts the
      next step. A heading with nothing under it that is directly followed by a
      deeper heading ("### Phase 1" then "#### Step 1.1") is not a step but a
      *section*: it becomes ``ParsedStep.section`` of the steps below it.
    * Content before a phase's first step becomes an *implicit step* titled like the
      phase when it holds checklist content (items, fields, choices, gates or code);
      plain prose stays the phase's description. The same rule applies before the
      first phase (the implicit phase is titled like the runbook). A document
      without headings is therefore one phase with one step.
    * Only top-level headings are structure; a heading inside a list or a quote is text.

Checklist content (recognised per line, on the raw inline Markdown of the line)
    * Item: a line starting with ``[ ]``, ``[x]`` or ``[X]`` (the task-list rule,
      usually inside a list item), or with a single ``☐``/``☑``/``☒`` box. Nested
      list items become children. ``**1.1**`` right after the box is the number.
      A list entry without a box that has boxed entries below it becomes their
      ``group`` (e.g. "1. **Account List Page**" above its checks). Lines that
      continue an item's paragraph join its text with newlines. Table rows with a
      cell that starts with a box are items too (text: the other cells, " — "-joined).
    * Field: a blank of three or more underscores. Its label is the text just
      before it ("**Time Completed:** ____" gives "Time Completed"; "Rollback Point:
      Backup location documented: ____" gives "Backup location documented"). On a
      line with several fill-ins the first keeps its own label and the later ones are
      prefixed with it: "Product Owner: ____ Date: ____" gives "Product Owner" and
      "Product Owner — Date". A blank without any label ("1. ______") is named after
      the closest preceding lead-in line ("**Next Steps:**" gives "Next Steps 1") or
      "Blank N" ("Blank" on an item line). Text after the last blank ("(date/time)") is
      kept as its ``hint``; text before the label stays in the description.
    * Choice: a line with a ``☐`` (or two ``[ ]`` boxes) after a label:
      "**Migration Status:** ☐ Success ☐ Failed". Trailing parentheses of an option
      go to ``notes``; ticked boxes to ``selected``.
    * Gate: a choice whose options include GO and NO-GO, or GO-LIVE and ROLLBACK.
    * Code: fenced and indented code blocks, verbatim.
    A field, choice or gate written on an item line belongs to that item's line
    (``on_item``) and the item stays an item. Within a step, fields, choices, gates
    and code blocks are listed in reading order (see ``reading_order``).

Step metadata
    The step's first ``**Responsible:** DevOps Engineer`` line sets its role, the
    first ``**Time Estimate**: 10-15 minutes`` (or Duration, Estimated time…) its
    duration and the first ``**Planned start:** T-1h`` (T+30, T+1h30m, T-90m, T-0)
    its offset. Such a line leaves the description only when the canonical rendered
    line says the same; "Product Owner (meeting facilitator)" or "T-1h (after the
    backup)" stays as written. A step named like a timeline entry ("Step 2.2: Apply
    Database Migrations" / "T+5 | Apply database migrations") takes that entry's
    offset when it has no planned start of its own, and its duration when it has none.

Descriptions
    Everything else (prose, tables, quotes, lists of links, email templates) is
    kept as Markdown in the description of the runbook, phase or step it sits in,
    so nothing is lost. Thematic breaks (``---``) are dropped: they only separate
    sections visually. What is left between extracted lines is de-indented and, where
    a line would start a block it did not start before, backslash-escaped. If the
    leftovers still read as structure (a rare, hostile case), the description is
    written as a quote. The timeline, the stated start time, attendee lists and extra
    responsible lines are read from the finished descriptions, which is what makes
    ``render_markdown`` round trips exact.

Timeline
    Tables with a time column ("Time", "When"…) and an activity column, and list
    entries such as ``- **09:30 AM**: Final checks`` or ``- **T+5**: Migrate``.
    T-notation gives offsets directly (T-24h, T+5 = five minutes); clock times are
    relative to a start time stated in a description ("**Time**: 10:00 AM EST").

Meaning
    Mojibake (UTF-8 once read as Windows-1252: "âœ…", "ðŸš€") is repaired with ftfy before
    parsing, line by line and only where a tell-tale pair shows. After assembly,
    ``checklists.recognition`` reads the same token stream for gates, approvals, relative
    times, roles, contacts, thresholds, rollout stages and placeholder fields wherever they are
    written, and ``ParsedRunbook.found`` holds what it found, each with its source line. A
    step whose heading states a relative time ("(T-24h)", "Day -1", "Week 2") and that has no
    planned start of its own or from the timeline starts then.

Modules
    ``model`` (what a parsed runbook is), ``decoding`` (bytes to text, mojibake), ``lines``
    (one line's boxes, blanks, labels, choices), ``times`` (durations, T-offsets, clocks),
    ``blocks`` (list groups, tables, descriptions and the facts in them), ``assembly`` (the
    token stream to phases and steps); the words and patterns of meaning live in
    ``checklists.vocabulary`` and are read by ``checklists.recognition``.

Roles
    The catalogue collects, de-duplicated case-insensitively in order of appearance:
    step roles, "Attendees:" lists, timeline owner columns, sign-off lines (a field
    labelled "<Role> — Date") and "<Role> approval" items in approval/sign-off steps.
    Words like "All" or "-" are not roles.
"""

from __future__ import annotations

import gc

from checklists.parsing.assembly import _Assembler, _recognise
from checklists.parsing.decoding import DEFAULT_MAX_BYTES, _decode, _repair_mojibake
from checklists.parsing.model import (
    ParsedChoice,
    ParsedCodeBlock,
    ParsedField,
    ParsedGate,
    ParsedItem,
    ParsedPhase,
    ParsedRunbook,
    ParsedStep,
    ParsedTimelineEntry,
    RunbookImportError,
    iter_items,
    reading_order,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ParsedChoice",
    "ParsedCodeBlock",
    "ParsedField",
    "ParsedGate",
    "ParsedItem",
    "ParsedPhase",
    "ParsedRunbook",
    "ParsedStep",
    "ParsedTimelineEntry",
    "RunbookImportError",
    "iter_items",
    "parse_runbook",
    "reading_order",
]


def parse_runbook(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedRunbook:
    """Parse an uploaded runbook. Raises RunbookImportError (never anything else) for bad input."""
    text, repairs = _repair_mojibake(_decode(data, max_bytes))
    # A megabyte of Markdown becomes ~10^5 tokens and tree nodes (with parent cycles). Left on,
    # the cyclic garbage collector rescans that growing graph over and over, which makes large
    # imports superlinear (1 MB: 3 s instead of 1.4 s; 4 MB: 12 s instead of 4.5 s).
    collecting = gc.isenabled()
    gc.disable()
    try:
        assembler = _Assembler(text)
        runbook = assembler.assemble()
        runbook.found = _recognise(text, assembler, runbook, repairs)
        return runbook
    finally:
        if collecting:
            gc.enable()
