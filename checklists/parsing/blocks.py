"""Blocks of a step: list groups, tables and descriptions, and the facts read from them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from checklists.parsing.lines import (
    _BRACKET_BOX_RE,
    _CHECKED_GLYPHS,
    _GLYPH_RE,
    _analyze_line,
    _clean_label,
    _clean_role,
    _is_gate,
    _labelled,
    _LineFacts,
)
from checklists.parsing.model import ParsedChoice, ParsedCodeBlock, ParsedField, ParsedGate, ParsedItem, ParsedTimelineEntry
from checklists.parsing.times import (
    _BOLD_LEAD_RE,
    _CANONICAL_DURATION_RE,
    _PLAIN_TIME_LEAD_RE,
    _clock_minutes,
    _is_time_label,
    _parse_duration,
    _planned_start,
)

# markdown-it silently drops content nested deeper than maxNesting. We parse with a
# generous limit and refuse documents that come close to it, so nothing disappears
# (quoting a description adds one level, hence the margin).
_MAX_NESTING = 60


_NESTING_MARGIN = 6


# Inline parsing is disabled: every rule here reads the raw inline Markdown of a
# line (token.content), and skipping the inline pass halves the parse time.
_MD = MarkdownIt("commonmark", {"maxNesting": _MAX_NESTING}).enable("table").disable(["inline", "text_join"])


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
