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

Roles
    The catalogue collects, de-duplicated case-insensitively in order of appearance:
    step roles, "Attendees:" lists, timeline owner columns, sign-off lines (a field
    labelled "<Role> — Date") and "<Role> approval" items in approval/sign-off steps.
    Words like "All" or "-" are not roles.
"""

from __future__ import annotations

import codecs
import gc
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import ftfy
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from checklists.recognition import recognise, title_offset
from checklists.vocabulary import MOJIBAKE_HINT_RE

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
    "make_synthetic_runbook",
    "parse_runbook",
    "reading_order",
]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_MB = 1024 * 1024

# markdown-it silently drops content nested deeper than maxNesting. We parse with a
# generous limit and refuse documents that come close to it, so nothing disappears
# (quoting a description adds one level, hence the margin).
_MAX_NESTING = 60
_NESTING_MARGIN = 6

# Inline parsing is disabled: every rule here reads the raw inline Markdown of a
# line (token.content), and skipping the inline pass halves the parse time.
_MD = MarkdownIt("commonmark", {"maxNesting": _MAX_NESTING}).enable("table").disable(["inline", "text_join"])


# --- public data model -------------------------------------------------------------------


@dataclass
class ParsedItem:
    """A checkbox. ``text`` keeps inline Markdown; continuation lines are joined with newlines."""

    text: str
    checked: bool
    number: str | None
    line: int
    children: list[ParsedItem] = field(default_factory=list)
    group: str | None = None  # text of the unboxed list entry the item sits under, if any


@dataclass
class ParsedField:
    """A fill-in blank (``Label: ____``)."""

    label: str
    line: int
    hint: str = ""  # text after the blank, e.g. "(date/time)"
    on_item: bool = False  # written on an item's line: rendering the item reproduces it


@dataclass
class ParsedChoice:
    """A set of boxes to pick from (``Label: ☐ A ☐ B``)."""

    label: str
    options: list[str]
    line: int
    selected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per option, e.g. "(postpone)", "" when none
    on_item: bool = False


@dataclass
class ParsedGate:
    """A go/no-go decision: a choice offering GO/NO-GO or GO-LIVE/ROLLBACK."""

    label: str
    options: list[str]
    line: int
    selected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    on_item: bool = False


@dataclass
class ParsedCodeBlock:
    """A fenced or indented code block; ``code`` is verbatim and ends with a newline."""

    info: str
    code: str
    line: int


@dataclass
class ParsedTimelineEntry:
    """One row of a timeline; ``offset_minutes`` is relative to T-0 (or the stated start time)."""

    label: str
    offset_minutes: int | None
    activity: str
    duration_min_minutes: int | None
    duration_max_minutes: int | None
    role: str | None
    line: int


@dataclass
class ParsedStep:
    """A step: a heading at level 3 or deeper, or an implicit one (see the module doc)."""

    title: str
    number: str | None
    line: int
    description: str = ""
    role: str | None = None
    offset_minutes: int | None = None
    duration_min_minutes: int | None = None
    duration_max_minutes: int | None = None
    items: list[ParsedItem] = field(default_factory=list)
    fields: list[ParsedField] = field(default_factory=list)
    choices: list[ParsedChoice] = field(default_factory=list)
    gates: list[ParsedGate] = field(default_factory=list)
    code_blocks: list[ParsedCodeBlock] = field(default_factory=list)
    section: str | None = None  # title of the empty heading(s) above, joined with " › "
    implicit: bool = False  # made from content before the phase's first step heading


@dataclass
class ParsedPhase:
    """A phase: an H2 (or a later H1), or the implicit phase for content before the first one."""

    title: str
    line: int
    description: str = ""
    steps: list[ParsedStep] = field(default_factory=list)


@dataclass
class ParsedRunbook:
    """The whole runbook, as ``parse_runbook`` returns it and ``render_markdown`` writes it."""

    title: str
    description: str
    phases: list[ParsedPhase]
    roles: list[str]
    timeline: list[ParsedTimelineEntry]
    # What recognition read from the source (checklists.recognition): gates, approvals, times, roles…
    # with their source lines. Not compared: a rendered runbook has other line numbers.
    found: dict = field(default_factory=dict, compare=False, repr=False)

    def steps(self) -> Iterator[ParsedStep]:
        for phase in self.phases:
            yield from phase.steps

    def counts(self) -> dict:
        """Summary shown after an import; items include group parents and nested children."""
        steps = list(self.steps())
        items = [item for step in steps for item in iter_items(step.items)]
        return {
            "title": self.title,
            "phases": len(self.phases),
            "steps": len(steps),
            "items": len(items),
            "checked_items": sum(item.checked for item in items),
            "fields": sum(len(step.fields) for step in steps),
            "choices": sum(len(step.choices) for step in steps),
            "gates": sum(len(step.gates) for step in steps),
            "timeline_entries": len(self.timeline),
            "roles": list(self.roles),
        }


def iter_items(items: Iterable[ParsedItem]) -> Iterator[ParsedItem]:
    """Items and all their descendants, depth first, in document order."""
    for item in items:
        yield item
        yield from iter_items(item.children)


def reading_order(items: list[ParsedItem]) -> Callable[[int, bool], tuple[int, int, int]]:
    """Sort key for a step's fields, choices, gates and code blocks: where each reads among the items.

    Items read tree by tree, in list order. A fill-in written on an item's line
    (``on_item``) reads with that item; anything else reads after the item trees that
    start above it, so something written between an item and its nested children
    reads after the whole tree. That is where the renderer writes it, which keeps the
    order of these lists stable across a round trip.
    """
    starts = [item.line for item in items]
    item_keys: dict[int, tuple[int, int, int]] = {}
    for tree, item in enumerate(items, 1):
        for rank, node in enumerate(iter_items([item])):
            item_keys.setdefault(node.line, (tree, 0, rank))

    def key(line: int, on_item: bool) -> tuple[int, int, int]:
        if on_item and line in item_keys:
            return item_keys[line]
        return (bisect_left(starts, line), 1, line)

    return key


class RunbookImportError(ValueError):
    """The upload cannot be imported. ``str(error)`` is meant for the person uploading."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        self.reason = message
        super().__init__(f"Line {line}: {message}" if line else message)


# --- decoding ------------------------------------------------------------------------------

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_NUL_MESSAGE = "The file looks binary (it contains NUL bytes); upload a Markdown (.md) text file."
_CONTROL_MESSAGE = "The file looks binary (it is mostly control characters); upload a Markdown (.md) text file."
_DECLARED_CHARSET_RE = re.compile(rb"""(?:charset|encoding|coding)\s*[:=]\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _decode(data: bytes | str, max_bytes: int) -> str:
    """Bytes or text to normalised text (LF line ends), or a RunbookImportError saying why not."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
        _check_size(len(raw), max_bytes)
        # Lone surrogates cannot be stored or rendered; replace them like any undecodable byte.
        text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    else:
        _check_size(len(data), max_bytes)
        text = _decode_bytes(bytes(data))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise RunbookImportError("The file is empty.")
    nul = text.find("\x00")
    if nul >= 0:
        raise RunbookImportError(_NUL_MESSAGE, text.count("\n", 0, nul) + 1)
    if (len(text) - len(_CONTROL_RE.sub("", text))) * 10 > len(text) * 3:
        raise RunbookImportError(_CONTROL_MESSAGE)
    return text


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise RunbookImportError(f"The file is larger than the {max_bytes / _MB:g} MB limit ({size:,} bytes).")


def _decode_bytes(data: bytes) -> str:
    """UTF-8 (or UTF-16/32 with a BOM), else a declared charset, else Windows-1252, else Latin-1.

    Whether the result looks like text at all is checked by the caller.
    """
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return _decode_declared(data, codec, codec.upper())
    nul = data.find(b"\x00")
    if nul >= 0:  # before guessing an encoding: images and archives are full of NULs
        raise RunbookImportError(_NUL_MESSAGE, data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = _DECLARED_CHARSET_RE.search(data[:4096])
    if declared:
        name = declared.group(1).decode("ascii")
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            codec = None
        if codec is not None:
            return _decode_declared(data, codec, name)
    # Undeclared legacy text: Windows-1252 is what editors produce; Latin-1 decodes anything else.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_declared(data: bytes, codec: str, name: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        raise RunbookImportError(
            f"The file says it is encoded as {name}, but byte 0x{data[error.start]:02x} is not valid {name}; "
            "save it as UTF-8 and upload it again.",
            data.count(b"\n", 0, error.start) + 1,
        ) from None


# --- reading one line -----------------------------------------------------------------------

_GLYPHS = "☐☑☒□"
_CHECKED_GLYPHS = "☑☒"
_GLYPH_RE = re.compile(f"[{_GLYPHS}]")
_BRACKET_BOX_RE = re.compile(r"\[([ xX])\](?=[ \t]|$)")
_BLANK_RE = re.compile(r"(?<!\w)_{3,}(?!\w)")
_ESCAPE_RE = re.compile(r"\\[!-/:-@\[-`{-~]")
_BACKTICKS_RE = re.compile(r"`+")
_MASKABLE_RE = re.compile(r"[\\`]|https?:|<[A-Za-z]")
_URL_RE = re.compile(r"<[A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*>|https?://\S+")
_ITEM_NUMBER_RE = re.compile(r"\*\*(?P<number>[A-Za-z]?\d+(?:\.\d+)*)\.?\*\*(?:\s+|$)")
_LABELLED_RE = re.compile(r"\*{0,2}(?P<label>[^*:]{1,60}?)\*{0,2}[ \t]*:[ \t]*\*{0,2}[ \t]*(?P<value>.*)")
_TRAILING_PARENS_RE = re.compile(r"\s+(\([^()]*\))$")  # "NO-GO (postpone)", not "[x](http://link)"
_SENTENCE_END = ".!?"
_SENTENCE_START_RE = re.compile(r"\s+[*_]*[A-Z]")


@dataclass
class _Box:
    start: int
    end: int
    checked: bool
    glyph: bool


@dataclass
class _LineFacts:
    """What one line of inline Markdown holds."""

    item: tuple[bool, str | None, str] | None = None  # (checked, number, text after the box and number)
    fields: list[tuple[str, str]] = field(default_factory=list)  # (label, hint)
    choice: tuple[str, list[str], list[str], list[str]] | None = None  # label, options, selected, notes
    context: str = ""  # text before the labels ("If failed, stop deployment. Error: ____")
    labelled: tuple[str, str] | None = None  # ("responsible", "DevOps Engineer") for a plain "Label: value" line


def _mask(text: str) -> str:
    """Hide escapes, code spans and URLs so underscores or brackets inside them are not markers.

    Masked characters become NUL, which never occurs in decoded input.
    """
    if not _MASKABLE_RE.search(text):  # the common case, and the hot path on large files
        return text
    masked = list(text)

    def hide(start: int, end: int) -> None:
        masked[start:end] = "\x00" * (end - start)

    for match in _ESCAPE_RE.finditer(text):
        hide(*match.span())
    runs = [match.span() for match in _BACKTICKS_RE.finditer("".join(masked))]
    # A code span closes at the next backtick run of the same length (CommonMark);
    # precomputing "next run of this length" keeps this linear on hostile lines.
    following: list[int | None] = [None] * len(runs)
    last_of_length: dict[int, int] = {}
    for index in range(len(runs) - 1, -1, -1):
        length = runs[index][1] - runs[index][0]
        following[index] = last_of_length.get(length)
        last_of_length[length] = index
    index = 0
    while index < len(runs):
        closing = following[index]
        if closing is None:
            index += 1
            continue
        hide(runs[index][0], runs[closing][1])
        index = closing + 1
    for match in _URL_RE.finditer(text):
        hide(*match.span())
    return "".join(masked)


def _find_boxes(masked: str) -> list[_Box]:
    boxes = [_Box(m.start(), m.end(), m.group() in _CHECKED_GLYPHS, glyph=True) for m in _GLYPH_RE.finditer(masked)]
    boxes += [_Box(m.start(), m.end(), m.group(1) != " ", glyph=False) for m in _BRACKET_BOX_RE.finditer(masked)]
    return sorted(boxes, key=lambda box: box.start)


def _analyze_line(text: str, fallback_label: Callable[[], str]) -> _LineFacts:
    """Find the item box, blanks and choice boxes on one line of inline Markdown.

    ``fallback_label`` names a blank that has no label of its own; it is only
    called when such a blank exists. On an item line such a blank is just "Blank":
    the item's text says what it is for, and the item is read again, with other
    context, whenever its runbook is rendered and parsed.
    """
    facts = _LineFacts()
    body, masked = text, _mask(text)
    leading = _BRACKET_BOX_RE.match(masked)
    if leading:  # the task-list rule: "[ ] text" at the very start
        facts.item, body = _item(leading.group(1) != " ", text[leading.end() :])
        masked = _mask(body)
    boxes = _find_boxes(masked)
    glyphs = sum(box.glyph for box in boxes)
    if facts.item is None and glyphs == 1 and len(boxes) == 1 and not _clean_label(body[: boxes[0].start]):
        # "☐ Task" (Word-style checklists): one box and nothing before it.
        facts.item, body = _item(boxes[0].checked, body[boxes[0].end :])
        masked, boxes = _mask(body), []
    elif not glyphs and len(boxes) < 2:  # a lone "[ ]" mid-sentence is not a choice
        boxes = []
    blanks = [match.span() for match in _BLANK_RE.finditer(masked)]
    if boxes or blanks:
        name_blank = fallback_label if facts.item is None else lambda: "Blank"
        facts.fields, facts.choice, facts.context = _fill_ins(body, boxes, blanks, name_blank)
    elif facts.item is None:
        facts.labelled = _labelled(text)
    return facts


def _item(checked: bool, rest: str) -> tuple[tuple[bool, str | None, str], str]:
    """The item facts for the text after a box, and the text left to look for fill-ins in.

    "**1.1** Do x" gives number "1.1" and text "Do x"; the text is stripped as it will
    be when rendered after the box.
    """
    text = rest.strip()
    match = _ITEM_NUMBER_RE.match(text)
    number = match.group("number") if match else None
    text = text[match.end() :] if match else text
    return (checked, number, text), text


def _labelled(text: str) -> tuple[str, str] | None:
    """ "**Responsible:** DevOps Engineer" -> ("responsible", "DevOps Engineer")."""
    match = _LABELLED_RE.fullmatch(text)
    if not match:
        return None
    return " ".join(match.group("label").lower().split()), _trim(match.group("value"), "*")


def _fill_ins(
    body: str, boxes: list[_Box], blanks: list[tuple[int, int]], fallback_label: Callable[[], str]
) -> tuple[list[tuple[str, str]], tuple[str, list[str], list[str], list[str]] | None, str]:
    """Split a line into its fields, its (single) choice and the text around their labels.

    See the module doc for the label rules.
    """
    events: list[tuple[int, int, _Box | None]] = sorted([(b.start, b.end, b) for b in boxes] + [(s, e, None) for s, e in blanks],
                                                        key=lambda event: event[0])  # fmt: skip
    fields: list[tuple[str, str]] = []
    line_label: str | None = None
    choice_label: str | None = None
    options: list[str] = []
    selected: list[str] = []
    notes: list[str] = []
    contexts: list[str] = []
    for index, (start, end, box) in enumerate(events):
        before = body[events[index - 1][1] if index else 0 : start]
        is_last = index + 1 == len(events)
        after = body[end : len(body) if is_last else events[index + 1][0]]
        next_is_blank = not is_last and events[index + 1][2] is None
        previous_is_box = index > 0 and events[index - 1][2] is not None
        if box is not None:
            if choice_label is None:
                context, choice_label = _split_label(before)
                contexts.append(context)
                choice_label = choice_label or line_label or ""
                line_label = line_label or choice_label or None
            # "☐ Yes Time: ____": the option is the first word, the rest labels the blank.
            option, note = _split_option(_first_word(after)[0] if next_is_blank else after)
            options.append(option)
            notes.append(note)
            if box.checked:
                selected.append(option)
            continue
        if previous_is_box:
            own = _clean_label(_first_word(before)[1]) or options[-1]
        else:
            context, own = _split_label(before)
            contexts.append(context)
        if line_label is None:
            line_label = own or fallback_label()
            label = line_label
        else:
            label = f"{line_label} — {own or len(fields) + 1}"
        hint = after.strip() if is_last else ""
        fields.append((label, hint if any(char.isalnum() for char in hint) else ""))  # not a lone ")"
    choice = (choice_label or "", options, selected, notes) if options else None
    return fields, choice, " ".join(context for context in contexts if context)


def _first_word(text: str) -> tuple[str, str]:
    first, *rest = text.split(None, 1) or [""]
    return first, rest[0] if rest else ""


def _split_option(text: str) -> tuple[str, str]:
    """ "NO-GO (postpone)" -> ("NO-GO", "(postpone)")."""
    option = _trim(text, "*_:")
    notes: list[str] = []
    while match := _TRAILING_PARENS_RE.search(option):
        notes.insert(0, match.group(1))
        option = _trim(option[: match.start()], "*_:")
    return option, " ".join(notes)


def _split_label(text: str) -> tuple[str, str]:
    """(context, label): the label is the text after the last colon, open parenthesis or sentence end.

    "**Rollback Point:** Backup location documented: " -> ("**Rollback Point:**",
    "Backup location documented"). The label is idempotent under this function, and
    ``f"**{label}:** "`` gives it back, which is what makes rendered fields parse to
    the same labels.
    """
    body = _trim(text, "*_:", left=False)
    cut = depth = 0
    for index in range(len(body) - 1, -1, -1):
        char = body[index]
        if char == ")":
            depth += 1
        elif char == "(" and depth:
            depth -= 1
        elif char == "(" or (
            depth == 0 and (char == ":" or (char in _SENTENCE_END and _SENTENCE_START_RE.match(body, index + 1)))
        ):
            cut = index + 1
            break
    tail = body[cut:]
    label = _trim(tail, "*_", right=False)
    context = text[: cut + len(tail) - len(label)].strip()
    return context if any(char.isalnum() for char in context) else "", label


def _clean_label(text: str) -> str:
    return _split_label(text)[1]


def _clean_role(text: str) -> str:
    """ "Product Owner (meeting facilitator)" -> "Product Owner"."""
    role = _trim(text, "*_")
    while match := _TRAILING_PARENS_RE.search(role):
        role = _trim(role[: match.start()], "*_")
    return role


def _trim(text: str, marks: str, *, left: bool = True, right: bool = True) -> str:
    """Strip whitespace (as str.strip() sees it, like markdown-it) and the given Markdown marks."""
    chars = f"[\\s{re.escape(marks)}]+"
    if left:
        text = re.sub(f"^{chars}", "", text)
    return re.sub(f"{chars}$", "", text) if right else text


def _is_gate(options: list[str]) -> bool:
    keys = {re.sub(r"[\s_–—]+", "-", option.upper()) for option in options}
    return {"GO", "NO-GO"} <= keys or {"GO-LIVE", "ROLLBACK"} <= keys


# --- times and durations --------------------------------------------------------------------

_UNIT_MINUTES = {"d": 1440, "h": 60, "m": 1}
_DURATION = r"(\d+(?:\.\d+)?)[ \t]*(?:(?:-|–|—|to)[ \t]*(\d+(?:\.\d+)?)[ \t]*)?(days?|d|hours?|hrs?|h|minutes?|mins?|m)\b"
_DURATION_RE = re.compile(_DURATION, re.IGNORECASE)
_CANONICAL_DURATION_RE = re.compile(rf"[ \t]*{_DURATION}[ \t]*\.?", re.IGNORECASE)
_T_UNIT = r"(?:days?|d|hours?|hrs?|h|minutes?|mins?|m)"
# "T-24h", "T+5", "T+1h30m": every amount but the last needs a unit (a bare last one is minutes).
_T_OFFSET_RE = re.compile(
    rf"T[ \t]*(?:([+\-−–])[ \t]*((?:\d+(?:\.\d+)?[ \t]*{_T_UNIT}[ \t]*)*\d+(?:\.\d+)?[ \t]*{_T_UNIT}?))?", re.IGNORECASE
)
_T_PART_RE = re.compile(rf"(\d+(?:\.\d+)?)[ \t]*({_T_UNIT})?", re.IGNORECASE)
_CLOCK = r"(\d{1,2})(?::(\d{2}))?[ \t]*(?:([AaPp])\.?[Mm]\.?)?"
_CLOCK_RE = re.compile(rf"{_CLOCK}(?:[ \t]+[A-Z]{{2,5}})?")
_CLOCK_PREFIX_RE = re.compile(_CLOCK)
_PLAIN_TIME_LEAD_RE = re.compile(
    r"(?P<label>T[ \t]*[+\-−–][ \t]*\d+(?:\.\d+)?[ \t]*[A-Za-z]*|T[ \t]*0|\d{1,2}:\d{2}(?:[ \t]*[AaPp]\.?[Mm]\.?)?"
    r"(?:[ \t]+[A-Z]{2,5})?)[ \t]*(?::|-|–|—)[ \t]+(?P<rest>.+)"
)
_BOLD_LEAD_RE = re.compile(r"\*\*(?P<label>[^*]+?)\*\*[ \t]*:?[ \t]*(?P<rest>.*)")


def _parse_duration(text: str) -> tuple[int, int] | None:
    """ "10-15 minutes" -> (10, 15); "2-3 hours" -> (120, 180); "15 min" -> (15, 15)."""
    match = _DURATION_RE.search(text)
    if not match:
        return None
    unit = _UNIT_MINUTES[match.group(3)[0].lower()]
    low = round(float(match.group(1)) * unit)
    high = round(float(match.group(2)) * unit) if match.group(2) else low
    return (low, high) if low <= high else (high, low)


def _t_offset(label: str) -> int | None:
    """ "T-24h" -> -1440, "T+5" -> 5 (bare numbers are minutes), "T+1h30m" -> 90, "T-0" -> 0."""
    match = _T_OFFSET_RE.fullmatch(label.strip())
    if not match:
        return None
    if match.group(1) is None:
        return 0
    minutes = 0
    for amount, unit in _T_PART_RE.findall(match.group(2)):
        # Whole numbers stay exact, however large: a rendered offset must read back to the same minutes.
        number = int(amount) if amount.isdigit() else float(amount)
        minutes += number * _UNIT_MINUTES[(unit or "m")[0].lower()]
    minutes = round(minutes)
    return -minutes if match.group(1) != "+" else minutes


def _planned_start(value: str) -> tuple[int, bool] | None:
    """ "T-1h" -> (-60, True); "T-1h (after the backup)" -> (-60, False): the offset, and whether that is all it says.

    None when the value does not start with a signed T-offset (a clock time, "Tuesday").
    """
    value = value.strip()
    offset = _t_offset(value)
    if offset is not None:
        return offset, True
    match = _T_OFFSET_RE.match(value)
    if match is None or match.group(1) is None:
        return None
    end = match.end()
    if end < len(value) and value[end - 1].isalnum() and value[end].isalnum():  # "T+5m30s", "T+5min2"
        return None
    offset = _t_offset(match.group())
    return None if offset is None else (offset, False)


def _clock_minutes(text: str, *, prefix: bool = False) -> int | None:
    """Minutes after midnight of "09:30 AM", "12:00 PM EST" or "14:30"; None if it is not a clock time."""
    match = (_CLOCK_PREFIX_RE.match if prefix else _CLOCK_RE.fullmatch)(text.strip())
    if not match or (match.group(2) is None and match.group(3) is None):
        return None  # a bare number is not a time
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").lower()
    if minute > 59 or hour > (12 if half else 23) or (half and hour == 0):
        return None
    if half:
        hour = hour % 12 + (12 if half == "p" else 0)
    return hour * 60 + minute


def _is_time_label(label: str) -> bool:
    return _t_offset(label) is not None or _clock_minutes(label) is not None


def _label_offset(label: str, start_minutes: int | None) -> int | None:
    offset = _t_offset(label)
    if offset is not None:
        return offset
    clock = _clock_minutes(label)
    if clock is None or start_minutes is None:
        return None
    delta = clock - start_minutes
    if delta < -720:  # past midnight
        delta += 1440
    elif delta > 720:
        delta -= 1440
    return delta


# --- one region of blocks (a step, or the content before the first step) --------------------

_ROLE_LABELS = {"responsible", "owner", "assignee", "assigned to", "decision maker", "responsible party", "performed by"}
_DURATION_LABELS = {"time estimate", "estimated time", "duration", "estimated duration", "time required", "est. time"}
_OFFSET_LABELS = {"planned start"}
_ATTENDEE_LABELS = {"attendees", "participants", "required attendees"}
_START_LABELS = {"start time", "start", "time", "deployment time", "deployment start", "go-live time", "kick-off", "kickoff"}
_ROLE_WORDS_TO_SKIP = {"all", "everyone", "everybody", "anyone", "n/a", "na", "tbd", "none", "-", "—", "–", "team", "?"}


@dataclass
class _Group:
    """An unboxed list entry whose boxed descendants are grouped under its text."""

    label: str
    parent: _Group | None
    line_indexes: list[int]
    used: bool = False

    @property
    def chain(self) -> str:
        return f"{self.parent.chain} › {self.label}" if self.parent else self.label


class _BlockScanner:
    """Extracts checklist structure from the blocks of one region.

    Records which source lines it consumed; the rest becomes the description. Also
    used on a finished description, to check that it holds no structure.
    """

    def __init__(self) -> None:
        self.consumed: set[int] = set()
        self.continuations: set[int] = set()  # paragraph lines other than the first
        self.items: list[ParsedItem] = []
        self.fields: list[ParsedField] = []
        self.choices: list[ParsedChoice] = []
        self.gates: list[ParsedGate] = []
        self.code_blocks: list[ParsedCodeBlock] = []
        # Description text made here rather than copied: label context, rest of item tables. (start, lines, origins)
        self.pieces: list[tuple[int, list[str], list[int]]] = []
        self.role: str | None = None
        self.duration: tuple[int, int] | None = None
        self.offset: int | None = None
        self._metadata_lines: list[int] = []
        self._lead_in: str | None = None
        self._unlabelled = 0

    @property
    def actionable(self) -> bool:
        return bool(self.items or self.fields or self.choices or self.gates or self.code_blocks)

    @property
    def found_structure(self) -> bool:
        return bool(self.actionable or self.consumed or self.pieces)

    def scan(self, nodes: Iterable[SyntaxTreeNode]) -> None:
        for node in nodes:
            self._block(node, None, None, root=True)

    def demote_metadata(self) -> None:
        """Give role, duration and planned start lines back to the text: outside a step they describe nothing."""
        self.consumed.difference_update(self._metadata_lines)
        self.role = self.duration = self.offset = None

    # blocks

    def _block(self, node: SyntaxTreeNode, parent: ParsedItem | None, group: _Group | None, *, root: bool = False) -> None:
        kind = node.type
        if kind == "paragraph":
            self._paragraph(node, parent, group)
        elif kind in ("bullet_list", "ordered_list"):
            for entry in node.children:
                self._list_entry(entry, parent, group)
        elif kind in ("fence", "code_block"):
            info = node.info.strip() if kind == "fence" else ""
            # Only a fence left open at the end of the file lacks the final newline; a fence written back needs it.
            code = node.content if node.content.endswith("\n") or not node.content else node.content + "\n"
            self.code_blocks.append(ParsedCodeBlock(info=info, code=code, line=node.map[0] + 1))
            self._consume(*node.map)
        elif kind == "table":
            self._table(node, parent, group)
        elif root and kind in ("hr", "heading"):  # separators, and the title heading
            self._consume(*node.map)
        # Anything else (quotes, raw HTML, nested headings) is text for the description.

    def _paragraph(
        self, node: SyntaxTreeNode, parent: ParsedItem | None, group: _Group | None
    ) -> tuple[ParsedItem | None, list[tuple[int, str]]]:
        """Returns the item started on the paragraph's first line, if any, and the lines left as text."""
        start, end = node.map
        texts = node.children[0].content.split("\n") if node.children else []
        first_item = open_item = None
        kept: list[tuple[int, str]] = []
        for offset, index in enumerate(range(start, end)):
            # markdown-it trims a paragraph with str.strip() (form feeds, U+3000…); trimming every line the
            # same way keeps a line's text the same wherever rendering puts it in a paragraph.
            text = texts[offset].strip() if offset < len(texts) else ""
            if offset:
                self.continuations.add(index)
            facts = _analyze_line(text, self._fallback_label)
            metadata = self._take_metadata(facts.labelled)
            if facts.item is not None:
                open_item = self._add_item(facts, index, parent, group)
                first_item = first_item or (open_item if offset == 0 else None)
            elif facts.fields or facts.choice:
                self._add_fill_ins(facts, index + 1, on_item=False)
                self._consume(index, index + 1)
                # The words before the labels stay in the description, unless they are the step's metadata.
                if facts.context and not self._take_metadata(_labelled(facts.context)):
                    self.pieces.append((index, [_escape_block_start(facts.context)], [index]))
                open_item = None
            elif metadata:
                self._metadata_lines.append(index)
                self._consume(index, index + 1)
                open_item = None
            elif open_item is not None and text and metadata is None:
                open_item.text += "\n" + _escape_continuation(text)
                self._consume(index, index + 1)
            else:
                kept.append((index, text))
                open_item = None
                if text.rstrip(" \t*_").endswith(":"):
                    self._lead_in, self._unlabelled = _clean_label(text) or None, 0
        return first_item, kept

    def _list_entry(self, entry: SyntaxTreeNode, parent: ParsedItem | None, group: _Group | None) -> None:
        children = entry.children
        if len(children) == 1 and children[0].type == "hr" and children[0].markup.startswith("_"):
            # "1. ________" parses as a list entry holding a thematic break: it is a blank to fill in.
            self.fields.append(ParsedField(label=self._fallback_label(), line=entry.map[0] + 1))
            self._consume(*entry.map)
            return
        if not children or children[0].type != "paragraph":
            for child in children:
                self._block(child, parent, group)
            return
        item, kept = self._paragraph(children[0], parent, group)
        if item is not None:
            for child in children[1:]:
                self._block(child, item, None)
            return
        # Written back as "- <label>", so its lines must stay one paragraph whatever they start with.
        texts = [text for _, text in kept if text]
        label = "\n".join(_escape_continuation(text) if n else _escape_block_start(text) for n, text in enumerate(texts))
        if not label or len(children) == 1:
            for child in children[1:]:
                self._block(child, parent, group)
            return
        sub_group = _Group(label, group, [index for index, _ in kept])
        for child in children[1:]:
            self._block(child, parent, sub_group)
        if sub_group.used:
            for index in sub_group.line_indexes:
                self._consume(index, index + 1)

    def _table(self, node: SyntaxTreeNode, parent: ParsedItem | None, group: _Group | None) -> None:
        """Rows with a box in a cell are items; the other rows stay a table in the description."""
        sections = {child.type: child for child in node.children}
        header = [_cell_text(cell) for cell in sections["thead"].children[0].children]
        body_rows = getattr(sections.get("tbody"), "children", [])
        rows = [(row.map[0], [_cell_text(cell) for cell in row.children]) for row in body_rows]
        item_rows, other_rows = [], []
        for index, cells in rows:
            boxed = [_BRACKET_BOX_RE.match(cell) or _GLYPH_RE.match(cell) for cell in cells]
            if not any(boxed):
                other_rows.append((index, cells))
                continue
            first_box = next(match for match in boxed if match)
            checked = first_box.group() in _CHECKED_GLYPHS or first_box.group().lower() == "[x]"
            parts = [(cell[match.end() :] if match else cell).strip() for cell, match in zip(cells, boxed, strict=True)]
            item_rows.append((index, checked, " — ".join(part for part in parts if part)))
        if not item_rows:
            return
        self._consume(*node.map)
        for index, checked, text in item_rows:
            facts = _analyze_line(f"[{'x' if checked else ' '}] {text}", self._fallback_label)
            self._add_item(facts, index, parent, group)
        if other_rows:
            lines = [_table_row(header), _table_row(["---"] * len(header))] + [_table_row(cells) for _, cells in other_rows]
            origins = [node.map[0], node.map[0] + 1] + [index for index, _ in other_rows]
            self.pieces.append((node.map[0], lines, origins))

    # structure

    def _add_item(self, facts: _LineFacts, index: int, parent: ParsedItem | None, group: _Group | None) -> ParsedItem:
        checked, number, text = facts.item
        item = ParsedItem(text=text, checked=checked, number=number, line=index + 1, group=group.chain if group else None)
        while group is not None:
            group.used = True
            group = group.parent
        (parent.children if parent else self.items).append(item)
        self._add_fill_ins(facts, index + 1, on_item=True)
        self._consume(index, index + 1)
        return item

    def _add_fill_ins(self, facts: _LineFacts, line: int, *, on_item: bool) -> None:
        if facts.choice:
            label, options, selected, notes = facts.choice
            kind = ParsedGate if _is_gate(options) else ParsedChoice
            target = self.gates if kind is ParsedGate else self.choices
            target.append(kind(label=label, options=options, line=line, selected=selected, notes=notes, on_item=on_item))
        for label, hint in facts.fields:
            self.fields.append(ParsedField(label=label, line=line, hint=hint, on_item=on_item))

    def _take_metadata(self, labelled: tuple[str, str] | None) -> bool | None:
        """Use the step's first Responsible / Time Estimate / Planned start line.

        None if the line is not one; True if the canonical line the renderer writes
        says the same, so the line can leave the description; False if it says more
        ("Product Owner (meeting facilitator)") and stays as written.
        """
        if labelled is None:
            return None
        label, value = labelled
        if label in _ROLE_LABELS and self.role is None and (role := _clean_role(value)):
            self.role = role
            return role == value
        if label in _DURATION_LABELS and self.duration is None and (duration := _parse_duration(value)):
            self.duration = duration
            return _CANONICAL_DURATION_RE.fullmatch(value) is not None
        if label in _OFFSET_LABELS and self.offset is None and (planned := _planned_start(value)) is not None:
            self.offset, whole = planned
            return whole
        return None

    def _fallback_label(self) -> str:
        self._unlabelled += 1
        return f"{self._lead_in or 'Blank'} {self._unlabelled}"

    def _consume(self, start: int, end: int) -> None:
        self.consumed.update(range(start, end))


def _cell_text(cell: SyntaxTreeNode) -> str:
    return cell.children[0].content.strip(" \t") if cell.children else ""


def _table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


# --- descriptions -------------------------------------------------------------------------

_SETEXT_RE = re.compile(r"(?:=+|-+)[ \t]*")
_PIPE_RE = re.compile(r"(?<!\\)(?:\\\\)*(?:(\\\|)|(\|))")  # group 1: an escaped pipe, group 2: a bare one
_ORDERED_OPENER_RE = re.compile(r"\d{1,9}(?=[.)](?:[ \t]|$))")
_OTHER_OPENER_RE = re.compile(  # bullet, thematic break, quote, heading, HTML, fence, link definition
    r"[-+*](?:[ \t]|$)|[-*_](?:[ \t]*[-*_]){2,}[ \t]*$|>|#{1,6}(?:[ \t]|$)|<|`{3}|~{3}|\[[^\]]*\]:"
)
_HTML_OPENERS = (
    (re.compile(r"[ ]{0,3}<(script|pre|style|textarea)(?=[\s>]|$)", re.IGNORECASE), None),
    (re.compile(r"[ ]{0,3}<!--"), "-->"),
    (re.compile(r"[ ]{0,3}<\?"), "?>"),
    (re.compile(r"[ ]{0,3}<!\[CDATA\["), "]]>"),
    (re.compile(r"[ ]{0,3}<![A-Za-z]"), ">"),
)


@dataclass
class _Facts:
    """What a description says about the whole runbook."""

    timeline: list[ParsedTimelineEntry] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    start_minutes: int | None = None


def _describe(lines: list[str], scanner: _BlockScanner, start: int, end: int, *, is_step: bool) -> tuple[str, _Facts]:
    """The region's unconsumed lines as Markdown, plus the facts read from that Markdown.

    Outside a step, Responsible, Time Estimate and Planned start lines are plain text; in
    a step they are only text once the step has its own (the renderer writes that one first).

    Leftovers are cut into runs at consumed lines; each run is de-indented (it may
    come from inside a list) and a run starting mid-paragraph gets its first
    character escaped so it cannot turn into a list or a quote.
    """
    pieces: list[tuple[int, list[str], list[int]]] = list(scanner.pieces)
    run: list[int] = []
    for index in [*range(start, end), None]:
        if index is not None and index not in scanner.consumed:
            run.append(index)
            continue
        first = next((k for k, i in enumerate(run) if lines[i].strip(" \t")), len(run))
        last = next((k for k in range(len(run) - 1, -1, -1) if lines[run[k]].strip(" \t")), -1)
        run = run[first : last + 1]
        if run:
            width = _indent_width(lines[run[0]])
            text = [_dedent(lines[i], width) for i in run]
            if run[0] in scanner.continuations:
                text[0] = _escape_block_start(text[0].lstrip(" \t"))
            pieces.append((run[0], text, list(run)))
        run = []
    pieces.sort(key=lambda piece: piece[0])
    out: list[str] = []
    origins: list[int] = []
    for _, text, piece_origins in pieces:
        if out:
            out.append("")
            origins.append(piece_origins[0])
        out += text
        origins += piece_origins
    return _finish_description(
        out,
        origins,
        has_role=not is_step or scanner.role is not None,
        has_duration=not is_step or scanner.duration is not None,
        has_offset=not is_step or scanner.offset is not None,
    )


def _finish_description(
    lines: list[str], origins: list[int], *, has_role: bool, has_duration: bool, has_offset: bool
) -> tuple[str, _Facts]:
    """Check that the description reads back as plain text, and read its facts.

    If leftovers combined into something structural (a heading, a box, a first
    Responsible line…), the whole description is quoted: quotes are never structure.
    An HTML block left open would swallow the rest of a rendered document, so it is
    closed.
    """
    if not lines:
        return "", _Facts()
    text = "\n".join(lines)
    nodes = SyntaxTreeNode(_MD.parse(text)).children
    probe = _BlockScanner()
    # Metadata the owner already has makes further metadata lines text, as on a re-parse.
    probe.role, probe.duration = ("" if has_role else None), ((0, 0) if has_duration else None)
    probe.offset = 0 if has_offset else None
    probe.scan(node for node in nodes if node.type != "heading")
    new_metadata = (
        (probe.role is not None and not has_role)
        or (probe.duration is not None and not has_duration)
        or (probe.offset is not None and not has_offset)
    )
    if probe.found_structure or new_metadata or any(node.type == "heading" for node in nodes):
        return "\n".join(f"> {line}" if line.strip(" \t") else ">" for line in lines), _Facts()
    if nodes and nodes[-1].type == "html_block":
        text += _html_closer(nodes[-1].content)
    facts = _Facts()
    _collect_facts(nodes, origins, facts)
    return text, facts


def _html_closer(content: str) -> str:
    for opener, fixed_closer in _HTML_OPENERS:
        match = opener.match(content)
        if match:
            closer = fixed_closer or f"</{match.group(1)}>"
            return "" if closer.lower() in content[match.end() :].lower() else f"\n{closer}"
    return ""


def _indent_width(line: str) -> int:
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def _dedent(line: str, width: int) -> str:
    stripped = line.lstrip(" \t")
    return " " * max(_indent_width(line) - width, 0) + stripped


def _escape_continuation(text: str) -> str:
    """Escape a continuation line that would read differently once rendered indented under its list entry.

    Continuations lose their indentation, so "    - [ ] x" (text, being indented
    four) would become a nested item; a lazy "===" continues a paragraph, but
    indented it underlines a heading; lazy lines with pipes cannot form a table,
    indented ones can, unless each holds an escaped pipe (which no table delimiter
    row can). Applying this twice changes nothing.
    """
    text = f"\\{text}" if _SETEXT_RE.fullmatch(text) else _escape_block_start(text)
    pipe = _PIPE_RE.search(text)
    if pipe and not pipe.group(1):
        return f"{text[: pipe.start(2)]}\\{text[pipe.start(2) :]}"
    return text


def _escape_block_start(text: str) -> str:
    """Backslash-escape the marker if this line, standing first in a block, would open one.

    For lines that were inside a paragraph and are written where a block can start.
    Only real openers are escaped ("2. x", "- x", "> x", "# x", fences, HTML, link
    definitions), so "**Attendees:** …" stays as written.
    """
    number = _ORDERED_OPENER_RE.match(text)
    if number:
        return f"{text[: number.end()]}\\{text[number.end() :]}"
    return f"\\{text}" if _OTHER_OPENER_RE.match(text) else text


# --- facts read from descriptions -------------------------------------------------------

_TIME_HEADER_RE = re.compile(r"(time|when|offset|clock|start|t)\b", re.IGNORECASE)
_ACTIVITY_HEADER_RE = re.compile(r"(activity|task|action|step|description|what|event|milestone)", re.IGNORECASE)
_DURATION_HEADER_RE = re.compile(r"(duration|length|estimate|est\b)", re.IGNORECASE)
_ROLE_HEADER_RE = re.compile(r"(responsible|owner|who|role|assignee|lead)", re.IGNORECASE)


def _collect_facts(nodes: Iterable[SyntaxTreeNode], origins: list[int], facts: _Facts) -> None:
    for node in nodes:
        if node.type == "paragraph":
            for text in node.children[0].content.split("\n") if node.children else []:
                _line_fact(text.strip(), facts)
        elif node.type in ("bullet_list", "ordered_list"):
            for entry in node.children:
                _entry_facts(entry, origins, facts)
        elif node.type == "table":
            _table_facts(node, origins, facts)


def _entry_facts(entry: SyntaxTreeNode, origins: list[int], facts: _Facts) -> None:
    children = entry.children
    if children and children[0].type == "paragraph" and children[0].children:
        first, *rest = children[0].children[0].content.split("\n")
        timed = _timeline_lead(first.strip())
        if timed:
            label, activity = timed
            line = origins[children[0].map[0]] + 1
            facts.timeline.append(ParsedTimelineEntry(label, None, activity, None, None, None, line))
        else:
            _line_fact(first.strip(), facts)
        for text in rest:
            _line_fact(text.strip(), facts)
        children = children[1:]
    _collect_facts(children, origins, facts)


def _line_fact(text: str, facts: _Facts) -> None:
    labelled = _labelled(text)
    if labelled is None:
        return
    label, value = labelled
    if label in _ROLE_LABELS:
        facts.roles.append(_clean_role(value))
    elif label in _ATTENDEE_LABELS:
        facts.roles += [_clean_role(part) for part in re.split(r",|;|&|\band\b", value)]
    elif label in _START_LABELS and facts.start_minutes is None:
        facts.start_minutes = _clock_minutes(value, prefix=True)


def _timeline_lead(text: str) -> tuple[str, str] | None:
    """ "**09:30 AM**: Final checks" or "T+5 - Migrate" -> (label, activity)."""
    match = _BOLD_LEAD_RE.fullmatch(text) or _PLAIN_TIME_LEAD_RE.fullmatch(text)
    if not match:
        return None
    label = match.group("label").strip(" \t").rstrip(":").strip(" \t")
    if not _is_time_label(label):
        return None
    return label, match.group("rest").lstrip(" \t:-–—").strip(" \t")


def _table_facts(node: SyntaxTreeNode, origins: list[int], facts: _Facts) -> None:
    sections = {child.type: child for child in node.children}
    header = [_cell_text(cell).strip("*_ \t") for cell in sections["thead"].children[0].children]

    def column(pattern: re.Pattern[str]) -> int | None:
        return next((index for index, name in enumerate(header) if pattern.match(name)), None)

    time_column, activity_column = column(_TIME_HEADER_RE), column(_ACTIVITY_HEADER_RE)
    if time_column is None or activity_column is None or time_column == activity_column:
        return
    duration_column, role_column = column(_DURATION_HEADER_RE), column(_ROLE_HEADER_RE)
    for row in getattr(sections.get("tbody"), "children", []):
        cells = [_cell_text(cell) for cell in row.children]
        label, activity = cells[time_column], cells[activity_column]
        if not label and not activity:
            continue
        duration = _parse_duration(cells[duration_column]) if duration_column is not None else None
        role = _clean_role(cells[role_column]) if role_column is not None else ""
        role = None if role.lower() in {"", "-", "—", "–", "n/a"} else role
        facts.timeline.append(
            ParsedTimelineEntry(
                label=label,
                offset_minutes=None,
                activity=activity,
                duration_min_minutes=duration[0] if duration else None,
                duration_max_minutes=duration[1] if duration else None,
                role=role,
                line=origins[row.map[0]] + 1,
            )
        )
        if role:
            facts.roles.append(role)


# --- the document -------------------------------------------------------------------------

_STEP_NUMBER_RE = re.compile(r"step[ \t]+(?P<number>[A-Za-z]?\d+(?:\.\d+)*[a-z]?)\b", re.IGNORECASE)
_BARE_NUMBER_RE = re.compile(r"(?P<number>\d+(?:\.\d+)+|\d+(?=[.:)][ \t]))")
_APPROVAL_ROLE_RE = re.compile(r"(?P<role>.+?)[ \t]+(?:approval|sign-?off|readiness confirmation|confirmation)\b", re.IGNORECASE)
_SIGN_OFF_RE = re.compile(r"(?P<role>.+) — (?:date|signature|signed|initials)", re.IGNORECASE)
_STOPWORDS = {"a", "an", "and", "the", "of", "to", "for", "on", "in", "step", "phase"}
_FUZZY_MATCH_LIMIT = 500_000  # step x entry comparisons; beyond this (huge files), names must match exactly


@dataclass
class _Region:
    """The top-level blocks between one structural heading and the next."""

    heading: SyntaxTreeNode | None
    level: int
    start: int
    end: int = 0
    blocks: list[SyntaxTreeNode] = field(default_factory=list)


class _Assembler:
    """Walks the top-level blocks, cuts them into phases and steps, and collects runbook-wide facts."""

    def __init__(self, text: str):
        self.lines = text.split("\n")
        tokens = _MD.parse(text)
        deepest = max(tokens, key=lambda token: token.level, default=None)
        if deepest is not None and deepest.level >= _MAX_NESTING - _NESTING_MARGIN:
            raise RunbookImportError(
                f"The Markdown is nested too deeply here (more than {(_MAX_NESTING - _NESTING_MARGIN) // 2} levels "
                "of lists or quotes).",
                deepest.map[0] + 1 if deepest.map else None,
            )
        self.tokens = tokens
        self.blocks = SyntaxTreeNode(tokens).children
        self.timeline: list[ParsedTimelineEntry] = []
        self.role_mentions: list[str] = []
        self.start_minutes: int | None = None

    def assemble(self) -> ParsedRunbook:
        headings = [node for node in self.blocks if node.type == "heading"]
        title_node = next((node for node in headings if node.tag == "h1"), None)
        first_heading = title_node or (headings[0] if headings else None)
        title = (_heading_text(first_heading) if first_heading else "") or "Untitled runbook"
        runbook = ParsedRunbook(title=title, description="", phases=[], roles=[], timeline=[])
        regions = self._regions(title_node)
        phase: ParsedPhase | None = None
        sections: list[tuple[int, str]] = []
        for position, region in enumerate(regions):
            if region.level <= 2:  # the preamble (level 0) or a phase
                if region.heading is not None:
                    phase = ParsedPhase(title=_heading_text(region.heading) or "Untitled phase", line=region.heading.map[0] + 1)
                    runbook.phases.append(phase)
                    sections = []
                scanner = self._scan(region)
                if scanner.actionable:
                    if phase is None:
                        phase = ParsedPhase(title=title, line=_first_line(region))
                        runbook.phases.append(phase)
                    phase.steps.append(self._step(scanner, region, phase.title, _first_line(region), implicit=True))
                else:
                    scanner.demote_metadata()
                    description = self._description(scanner, region, is_step=False)
                    if phase is None:
                        runbook.description = description
                    else:
                        phase.description = description
                continue
            line = region.heading.map[0] + 1
            if phase is None:
                phase = ParsedPhase(title=title, line=line)
                runbook.phases.append(phase)
            while sections and sections[-1][0] >= region.level:
                sections.pop()
            heading = _heading_text(region.heading)
            following = regions[position + 1] if position + 1 < len(regions) else None
            if following is not None and following.level > region.level and self._is_empty(region):
                sections.append((region.level, heading or "Untitled section"))
                continue
            step = self._step(self._scan(region), region, heading or "Untitled step", line, implicit=False)
            step.section = " › ".join(title for _, title in sections) or None
            phase.steps.append(step)
        self._finish(runbook)
        return runbook

    def _regions(self, title_node: SyntaxTreeNode | None) -> list[_Region]:
        regions = [_Region(heading=None, level=0, start=0)]
        for node in self.blocks:
            if node.type == "heading" and node is not title_node:
                regions[-1].end = node.map[0]
                regions.append(_Region(heading=node, level=max(2, int(node.tag[1])), start=node.map[1]))
            else:
                regions[-1].blocks.append(node)
        regions[-1].end = len(self.lines)
        return regions

    def _is_empty(self, region: _Region) -> bool:
        """Nothing but blank lines, separators or the title between this heading and the next."""
        if any(node.type not in ("hr", "heading") for node in region.blocks):
            return False
        covered = sum(node.map[1] - node.map[0] for node in region.blocks)
        return sum(1 for line in self.lines[region.start : region.end] if line.strip(" \t")) == covered

    def _scan(self, region: _Region) -> _BlockScanner:
        scanner = _BlockScanner()
        scanner.scan(region.blocks)
        return scanner

    def _description(self, scanner: _BlockScanner, region: _Region, *, is_step: bool) -> str:
        description, facts = _describe(self.lines, scanner, region.start, region.end, is_step=is_step)
        self.timeline += facts.timeline
        self.role_mentions += facts.roles
        if self.start_minutes is None:
            self.start_minutes = facts.start_minutes
        return description

    def _step(self, scanner: _BlockScanner, region: _Region, title: str, line: int, *, implicit: bool) -> ParsedStep:
        step = ParsedStep(
            title=title,
            number=_step_number(title),
            line=line,
            role=scanner.role,
            duration_min_minutes=scanner.duration[0] if scanner.duration else None,
            duration_max_minutes=scanner.duration[1] if scanner.duration else None,
            offset_minutes=scanner.offset,
            items=scanner.items,
            fields=scanner.fields,
            choices=scanner.choices,
            gates=scanner.gates,
            code_blocks=scanner.code_blocks,
            implicit=implicit,
        )
        # Lists in reading order, which is the order the renderer writes them in.
        order = reading_order(step.items)
        for elements in (step.fields, step.choices, step.gates, step.code_blocks):
            elements.sort(key=lambda element: order(element.line, getattr(element, "on_item", False)))
        # Role mentions in a fixed order per step (role line, description, items, fields):
        # the order the renderer writes them, so the catalogue survives a round trip.
        if step.role:
            self.role_mentions.append(step.role)
        step.description = self._description(scanner, region, is_step=True)
        if re.search(r"approv|sign", title, re.IGNORECASE):
            for item in iter_items(step.items):
                match = _APPROVAL_ROLE_RE.fullmatch(_clean_role(item.text.replace("**", "")))
                if match:
                    self.role_mentions.append(match.group("role"))
        for parsed_field in step.fields:
            match = _SIGN_OFF_RE.fullmatch(parsed_field.label)
            if match:
                self.role_mentions.append(match.group("role"))
        return step

    def _finish(self, runbook: ParsedRunbook) -> None:
        for entry in self.timeline:
            entry.offset_minutes = _label_offset(entry.label, self.start_minutes)
        runbook.timeline = self.timeline
        _match_timeline(list(runbook.steps()), self.timeline)
        for step in runbook.steps():
            # "### Pre-flight checks (T-24h)", "### Day -1: freeze": the heading says when the step starts.
            if step.offset_minutes is None:
                step.offset_minutes = title_offset(step.title)
        seen: set[str] = set()
        for name in self.role_mentions:
            key = name.casefold()
            if name and len(name) <= 120 and key not in seen and key not in _ROLE_WORDS_TO_SKIP and not key.startswith("all "):
                seen.add(key)
                runbook.roles.append(name)
        steps = list(runbook.steps())
        counts = runbook.counts()
        if not any(counts[kind] for kind in ("items", "fields", "choices", "gates")) and all(s.implicit for s in steps):
            raise RunbookImportError(
                "No checklist content found: add headings (## Phase, ### Step), checkboxes (- [ ] task), "
                "fill-in blanks (Label: ____) or choices (☐ GO ☐ NO-GO)."
            )


def _heading_text(node: SyntaxTreeNode) -> str:
    return " ".join(node.children[0].content.split()) if node.children else ""


def _first_line(region: _Region) -> int:
    return (region.blocks[0].map[0] if region.blocks else region.start) + 1


def _step_number(title: str) -> str | None:
    match = _STEP_NUMBER_RE.match(title) or _BARE_NUMBER_RE.match(title)
    return match.group("number") if match else None


def _name_words(text: str) -> frozenset[str]:
    """ "Step 2.4: Run Smoke Tests (Before Disabling Maintenance)" -> {"run", "smoke", "tests"}."""
    text = _STEP_NUMBER_RE.sub("", text, count=1)
    text = re.sub(r"\([^()]*\)", " ", text.replace("&", " and ")).lower()
    return frozenset(word for word in re.findall(r"[^\W_]+", text) if word not in _STOPWORDS and not word.isdigit())


def _match_timeline(steps: list[ParsedStep], timeline: list[ParsedTimelineEntry]) -> None:
    """Give a step the offset and the duration of the timeline entry it is named after, lacking its own.

    Names match when their words are equal, or when one's words (two or more) are
    all in the other's ("Create Database Backup" / "Database backup"). Each entry
    goes to the first step that matches it. A step with a planned start of its own
    still takes its entry, so which step an entry goes to does not depend on
    whether the offset was written out (as the renderer does).
    """
    untaken = {index: _name_words(entry.activity) for index, entry in enumerate(timeline)}
    exact: dict[frozenset[str], list[int]] = {}
    for index, words in untaken.items():
        exact.setdefault(words, []).append(index)
    fuzzy = len(steps) * len(timeline) <= _FUZZY_MATCH_LIMIT
    for step in steps:
        words = _name_words(step.title)
        if not words:
            continue
        candidates = [index for index in exact.get(words, []) if index in untaken]
        if not candidates and fuzzy:
            candidates = [
                index
                for index, entry_words in untaken.items()
                if min(len(words), len(entry_words)) >= 2 and (words <= entry_words or entry_words <= words)
            ]
        if not candidates:
            continue
        entry = timeline[min(candidates)]
        del untaken[min(candidates)]
        if step.offset_minutes is None:
            step.offset_minutes = entry.offset_minutes
        if step.duration_min_minutes is None and step.duration_max_minutes is None:
            step.duration_min_minutes, step.duration_max_minutes = entry.duration_min_minutes, entry.duration_max_minutes


# --- entry point --------------------------------------------------------------------------


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


def _repair_mojibake(text: str) -> tuple[str, list[dict]]:
    """UTF-8 that was once read as Windows-1252 ("âœ…", "ðŸš€") put right by ftfy, line by line.

    Only lines showing a tell-tale pair are handed to ftfy, so clean files cost one regex scan.
    """
    if not MOJIBAKE_HINT_RE.search(text):
        return text, []
    lines = text.split("\n")
    repairs = []
    for index, line in enumerate(lines):
        if MOJIBAKE_HINT_RE.search(line):
            fixed = ftfy.fix_text(line, normalization=None, fix_line_breaks=False, uncurl_quotes=False)
            if fixed != line:
                lines[index] = fixed
                repairs.append({"line": index + 1, "was": line.strip()[:200], "now": fixed.strip()[:200]})
    return "\n".join(lines), repairs


def _recognise(text: str, assembler: _Assembler, runbook: ParsedRunbook, repairs: list[dict]) -> dict:
    steps = list(runbook.steps())
    found = recognise(
        text,
        assembler.tokens,
        parsed_roles=[(name, 0) for name in runbook.roles],
        parsed_fields=[(f.label, f.line) for step in steps for f in step.fields],
        parsed_gates=[(g.line, g.label) for step in steps for g in step.gates],
        parsed_timeline=runbook.timeline,
        start_minutes=assembler.start_minutes,
    )
    found.repairs = repairs
    return found.as_dict()


# --- synthetic runbooks for benchmarks ------------------------------------------------------

_SYNTHETIC_ROLES = ("DevOps Engineer", "QA Lead", "Product Owner", "Database Administrator", "Lead Developer")
_SYNTHETIC_VERBS = ("Verify", "Deploy", "Back up", "Migrate", "Check", "Restart", "Monitor", "Announce", "Review", "Tag")
_SYNTHETIC_NOUNS = ("database", "API gateway", "payment service", "CDN cache", "worker pool", "feature flags", "DNS records",
                    "TLS certificates", "dashboards", "release notes")  # fmt: skip


def make_synthetic_runbook(size_bytes: int) -> str:
    """A realistic runbook of at least ``size_bytes`` UTF-8 bytes (overshooting by under one step).

    Deterministic. Mixes what real runbooks hold: a timeline table, numbered steps
    with roles and estimates, nested and numbered checkboxes, code, fields, choices,
    gates, a checklist table, prose and emoji. Used to benchmark large imports.
    """
    parts = [
        "# Synthetic Production Deployment 🚀\n\nGenerated runbook for load testing the importer.\n\n"
        "## Deployment Timeline\n\n**Time:** 10:00 AM UTC\n\n| Time | Activity | Duration | Responsible |\n"
        "|------|----------|----------|-------------|\n"
        "| T-1h | Create database backup | 30 min | DevOps Engineer |\n| T-0 | Begin deployment | - | All |\n"
        "| T+5 | Apply database migrations | 15 min | DevOps Engineer |\n| T+60 | Run smoke tests | 20 min | QA Lead |\n\n"
    ]
    size = len(parts[0].encode())
    phase = step = 0
    while size < size_bytes:
        if step % 8 == 0:
            phase += 1
            header = f"## Phase {phase}: Rollout wave {phase} (T+{phase * 30})\n\nPrepare wave {phase} carefully.\n\n"
            parts.append(header)
            size += len(header.encode())
        step += 1
        verb, noun = _SYNTHETIC_VERBS[step % 10], _SYNTHETIC_NOUNS[(step // 10) % 10]
        role = _SYNTHETIC_ROLES[step % 5]
        checks = "".join(
            f"- [{'x' if (step + n) % 7 == 0 else ' '}] **{phase}.{step}.{n}** {verb} {noun} shard {n}\n"
            f"  - [ ] Confirm `{noun.replace(' ', '_')}_{n}` metrics are green ✅\n"
            for n in range(1, 4)
        )
        block = (
            f"### Step {phase}.{step}: {verb} the {noun}\n\n**Responsible:** {role}\n\n**Time Estimate**: {5 + step % 10}-"
            f"{10 + step % 10} minutes\n\nThis step {verb.lower()}s the {noun} for wave {phase}. Ping #deployments if "
            "anything looks off — don’t improvise.\n\n"
            f"```bash\n# {verb} {noun}\n./ops.sh {verb.lower().replace(' ', '-')} --wave {phase} --step {step}\n```\n\n"
            f"{checks}\n| Check | Done |\n|-------|------|\n| {noun} healthy | ☐ |\n| Alerts quiet | [ ] |\n\n"
            f"**Migration Status:** ☐ Success ☐ Failed\n\n**Time Completed:** _______\n\n"
        )
        if step % 5 == 0:
            block += f"**Decision:** ☐ GO ☐ NO-GO\n\n- {role}: ________ Date: ______\n\n"
        parts.append(block)
        size += len(block.encode())
    return "".join(parts)
