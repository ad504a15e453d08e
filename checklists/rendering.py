"""Write a ParsedRunbook back as canonical Markdown.

The output is what ``parse_runbook`` reads back into the same structure (titles,
items, fields, choices, gates, code, descriptions, roles, timeline), so a runbook
stored in the database can be exported, edited and imported again without drift.

Canonical form: ``#`` title, ``##`` phases, ``###`` steps (``####`` under a section
heading), then per step ``**Responsible:**``, ``**Time Estimate**:``, ``**Planned
start:**`` (T-1h, T+30m, T+1h05m, T-0; whatever its source, a timeline entry included),
the description verbatim, and the step's items, fields, choices, gates and code blocks in reading
order (``parsing.reading_order``). Labels are written bold (``**Label:** ____``,
``**Status:** ☐ A ☐ B``) so that no label can start a list or a heading. The
timeline lives in the descriptions it was read from, so it is written back there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from checklists.parsing import (
    ParsedChoice,
    ParsedCodeBlock,
    ParsedField,
    ParsedGate,
    ParsedItem,
    ParsedRunbook,
    ParsedStep,
    reading_order,
)

__all__ = ["render_markdown"]

_BLANK = "____"


def render_markdown(runbook: ParsedRunbook) -> str:
    """Canonical Markdown for ``runbook``; ``parse_runbook`` reads it back to an equal runbook (lines aside)."""
    blocks = [f"# {_heading(runbook.title or 'Untitled runbook')}"]
    if runbook.description:
        blocks.append(runbook.description)
    for phase in runbook.phases:
        blocks.append(f"## {_heading(phase.title)}")
        if phase.description:
            blocks.append(phase.description)
        section: str | None = None
        for position, step in enumerate(phase.steps):
            # Content before a phase's first heading parses back into the same implicit step.
            if not (step.implicit and position == 0 and not phase.description):
                if step.section != section:
                    section = step.section
                    if section:
                        blocks.append(f"### {_heading(section)}")
                blocks.append(f"{'####' if section else '###'} {_heading(step.title)}")
            blocks.extend(_step_blocks(step))
    return "\n\n".join(blocks) + "\n"


def _heading(text: str) -> str:
    """A trailing "#" would be read as a closing sequence; a second one protects it."""
    text = " ".join(text.split())
    return f"{text} #" if text.endswith("#") else text


def _step_blocks(step: ParsedStep) -> Iterator[str]:
    if step.role:
        yield f"**Responsible:** {step.role}"
    low = step.duration_min_minutes if step.duration_min_minutes is not None else step.duration_max_minutes
    high = step.duration_max_minutes if step.duration_max_minutes is not None else low
    if low is not None:
        yield f"**Time Estimate**: {low if low == high else f'{low}-{high}'} minutes"
    if step.offset_minutes is not None:
        yield f"**Planned start:** {_offset(step.offset_minutes)}"
    if step.description:
        yield step.description
    # Fill-ins written on an item line come back with the item, so only free-standing ones are written.
    order = reading_order(step.items)
    entries: list[tuple[tuple[int, int, int], int, ParsedItem | ParsedField | ParsedChoice | ParsedGate | ParsedCodeBlock]]
    entries = [((tree, 0, 0), 0, item) for tree, item in enumerate(step.items, 1)]
    entries += [(order(f.line, False), 1, f) for f in step.fields if not f.on_item]
    entries += [(order(c.line, False), 2, c) for c in step.choices if not c.on_item]
    entries += [(order(g.line, False), 3, g) for g in step.gates if not g.on_item]
    entries += [(order(c.line, False), 4, c) for c in step.code_blocks]
    entries.sort(key=lambda entry: entry[:2])
    items: list[ParsedItem] = []
    for _key, _kind, entry in entries:
        if isinstance(entry, ParsedItem):
            items.append(entry)
            continue
        if items:
            yield "\n".join(_item_lines(items, ""))
            items = []
        yield _entry_block(entry)
    if items:
        yield "\n".join(_item_lines(items, ""))


def _offset(minutes: int) -> str:
    """ "T-1h", "T+30m", "T+1h05m", "T-0": what the parser reads back to the same minutes (and the editor shows)."""
    if minutes == 0:
        return "T-0"
    hours, rest = divmod(abs(minutes), 60)
    sign = "+" if minutes > 0 else "-"
    if not hours:
        return f"T{sign}{rest}m"
    return f"T{sign}{hours}h" + (f"{rest:02d}m" if rest else "")


def _entry_block(entry: ParsedField | ParsedChoice | ParsedGate | ParsedCodeBlock) -> str:
    if isinstance(entry, ParsedField):
        return f"**{entry.label}:** {_BLANK}" + (f" {entry.hint}" if entry.hint else "")
    if isinstance(entry, ParsedChoice | ParsedGate):
        return _choice_line(entry)
    return _fence(entry)


def _choice_line(choice: ParsedChoice | ParsedGate) -> str:
    parts = [f"**{choice.label}:**"] if choice.label else []
    notes = list(choice.notes) + [""] * (len(choice.options) - len(choice.notes))
    unticked = list(choice.selected)  # options may repeat: tick each selected one once
    for option, note in zip(choice.options, notes, strict=False):
        ticked = option in unticked
        if ticked:
            unticked.remove(option)
        parts += ["☑" if ticked else "☐", *(text for text in (option, note) if text)]
    return " ".join(parts)


def _item_lines(items: list[ParsedItem], indent: str) -> list[str]:
    """Items as a nested list; consecutive items of one group go under an unboxed entry with its text."""
    lines: list[str] = []
    group: str | None = None
    for item in items:
        if item.group != group:
            group = item.group
            if group is not None:
                lines += _entry_lines(indent, group.split("\n"))
        inner = indent + "  " if group is not None else indent
        box = "[x]" if item.checked else "[ ]"
        number = f" **{item.number}**" if item.number else ""
        first, *rest = item.text.split("\n")
        lines += _entry_lines(inner, [f"{box}{number} {first}".rstrip(), *rest])
        lines += _item_lines(item.children, inner + "  ")
    return lines


def _entry_lines(indent: str, lines: list[str]) -> list[str]:
    """A list entry: the first line after the bullet, the others as its continuation lines."""
    first, *rest = lines
    return [f"{indent}- {first}", *(f"{indent}  {line}" for line in rest)]


def _fence(block: ParsedCodeBlock) -> str:
    """Fence longer than any backtick run inside; tildes when the info string has a backtick."""
    char = "~" if "`" in block.info else "`"
    longest = max((len(run) for run in re.findall(re.escape(char) + "+", block.code)), default=0)
    fence = char * max(3, longest + 1)
    code = block.code if not block.code or block.code.endswith("\n") else block.code + "\n"
    return f"{fence}{block.info}\n{code}{fence}"
