"""What a parsed runbook is: phases, steps, items, fields, choices, gates, code and timeline."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


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
