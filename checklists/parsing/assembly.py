"""From the token stream to phases and steps: regions, step numbers, the timeline match."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.tree import SyntaxTreeNode

from checklists.parsing.blocks import _MAX_NESTING, _MD, _NESTING_MARGIN, _ROLE_WORDS_TO_SKIP, _BlockScanner, _describe
from checklists.parsing.lines import _clean_role
from checklists.parsing.model import (
    ParsedPhase,
    ParsedRunbook,
    ParsedStep,
    ParsedTimelineEntry,
    RunbookImportError,
    iter_items,
    reading_order,
)
from checklists.parsing.times import _label_offset
from checklists.recognition import recognise, title_offset

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
