"""Store a parsed runbook as a template version, and turn a version back into Markdown.

Parsing (checklists.parsing) knows Markdown; this module knows the database. An
import is one transaction: it either stores the whole version or nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Max

from checklists import hooks
from checklists.models import (
    ItemKind,
    Runbook,
    RunbookVersion,
    TemplateCodeBlock,
    TemplateItem,
    TemplatePhase,
    TemplateRole,
    TemplateStep,
    TemplateTimelineEntry,
)
from checklists.parsing import (
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
    parse_runbook,
    reading_order,
)
from checklists.recognition import understood_lines
from checklists.rendering import render_markdown
from checklists.review import apply_choices, is_placeholder, place, role_names
from warroom.bulk import allocate_ids, copy_insert

__all__ = ["ImportOutcome", "RunbookImportError", "export_markdown", "import_runbook", "version_to_parsed"]


@dataclass
class ImportOutcome:
    parsed: ParsedRunbook
    version: RunbookVersion | None  # None for a dry run
    created_runbook: bool = False
    # Why the file became a new runbook or a version of an existing one, said to the person importing.
    placement: str = ""

    def summary(self) -> dict:
        counts = self.parsed.counts()
        counts["found"] = self.parsed.found
        counts["understood"] = understood_lines(self.parsed.found)
        if self.placement:
            counts["placement"] = self.placement
        if self.version is not None:
            counts.update(runbook_id=self.version.runbook_id, version_id=self.version.pk, version=self.version.number)
        return counts


SAME_STRUCTURE = 0.5  # share of phase and step titles two versions of one runbook have in common, at least


def import_runbook(
    data: bytes | str,
    *,
    filename: str = "",
    user=None,
    runbook: Runbook | None = None,
    dry_run: bool = False,
    as_new: bool = False,
    kept: set[str] | None = None,
) -> ImportOutcome:
    """Parse and store a runbook. Importing into an existing runbook adds a version.

    ``runbook`` (the user's choice) gets the version; ``as_new`` always makes a new runbook.
    Otherwise a runbook with the same name gets the version only when it is the same runbook:
    the same file again, or at least half of its phase and step titles in common with its
    latest version. A different runbook that happens to share a title ("Production
    Deployment Checklist") becomes a runbook of its own, and the outcome says why.
    ``kept`` holds the boxes the person left ticked on the import review (``review.choice_key``);
    None keeps everything recognised. The version stores what was kept, placed in its
    structure (``review.place``), and what was dropped.
    Raises RunbookImportError with a message for the person uploading.
    """
    raw = data.encode() if isinstance(data, str) else data
    parsed = parse_runbook(raw, max_bytes=settings.RUNBOOK_MAX_BYTES)
    sha256 = hashlib.sha256(raw).hexdigest()
    if dry_run:
        try:
            placement = "a new runbook (as chosen)" if as_new else _place(parsed, sha256, runbook)[1]
        except DatabaseError:  # a dry run reads the file; it does not need a migrated database
            placement = ""
        return ImportOutcome(parsed=parsed, version=None, placement=placement)
    with transaction.atomic():
        created = False
        placement = "a new runbook (as chosen)" if as_new else ""
        if runbook is None and not as_new:
            runbook, placement = _place(parsed, sha256, None, lock=True)
        if runbook is None:
            runbook = Runbook.objects.create(name=parsed.title[:300], created_by=user)
            created = True
        else:
            runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
            placement = placement or f"a new version of “{runbook.name}” (as chosen)"
        number = (runbook.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = RunbookVersion.objects.create(
            runbook=runbook,
            number=number,
            title=parsed.title[:300],
            description=parsed.description,
            source_filename=filename[:255],
            source_sha256=sha256,
            created_by=user,
        )
        accepted = apply_choices(parsed.found, kept)
        sections, line_positions = _store(version, parsed, accepted)
        version.recognised = place(accepted, sections, line_positions)
        version.save(update_fields=["recognised"])
    return ImportOutcome(parsed=parsed, version=version, created_runbook=created, placement=placement)


def _structure_titles(titles) -> set[str]:
    return {" ".join(sorted(words)) for words in map(_title_words, titles) if words}


def _title_words(title: str) -> frozenset[str]:
    text = re.sub(r"^\s*(?:step|phase|stage)?\s*[\d.]+[:.)]?\s*", "", title.lower())
    return frozenset(re.findall(r"[^\W\d_]+", text))


def _place(parsed: ParsedRunbook, sha256: str, chosen: Runbook | None, *, lock: bool = False) -> tuple[Runbook | None, str]:
    """Which runbook the file belongs to, and the reason in words (see import_runbook)."""
    if chosen is not None:
        return chosen, f"a new version of “{chosen.name}” (as chosen)"
    candidates = Runbook.objects.filter(name=parsed.title[:300]).order_by("pk")
    if lock:
        candidates = candidates.select_for_update()
    mine = _structure_titles([p.title for p in parsed.phases] + [s.title for s in parsed.steps()])
    best, best_share = None, 0.0
    for candidate in candidates:
        latest = candidate.versions.order_by("-number").first()
        if latest is None:
            continue
        if latest.source_sha256 == sha256:
            return candidate, f"a new version of “{candidate.name}” (the same file was imported before)"
        theirs = _structure_titles(
            list(latest.phases.values_list("title", flat=True))
            + list(TemplateStep.objects.filter(phase__version=latest).values_list("title", flat=True))
        )
        share = len(mine & theirs) / len(mine | theirs) if mine | theirs else 1.0
        if share > best_share:
            best, best_share = candidate, share
    if best is not None and best_share >= SAME_STRUCTURE:
        return best, f"a new version of “{best.name}” ({best_share:.0%} of its phase and step titles are the same)"
    if candidates.exists():
        return None, (
            f"a new runbook: a runbook named “{parsed.title[:300]}” exists, but its structure differs "
            f"({best_share:.0%} of phase and step titles in common), so it is not taken to be the same runbook"
        )
    return None, "a new runbook"


def _store(
    version: RunbookVersion, parsed: ParsedRunbook, found: dict | None = None
) -> tuple[list[dict], dict[int, tuple[int, int, int]]]:
    """Store the structure; return the steps in reading order and where each source line's checklist line went.

    The role catalogue is the parser's roles, the recognised ones and the roles that give the kept
    approvals, each under the name its (kept) merge gives it: "QA", "QA team" and "QA Lead" are one role a person can hold.
    Steps and timeline rows name one of them (in any case) or none: "All" or "-" in a
    timeline's owner column, or a placeholder such as ``[Name]``, is not a role anyone holds.
    """
    found = found or {}
    merged = role_names(found)
    roles: dict[str, TemplateRole] = {}
    # A required approval or sign-off names who gives it: that is a role too.
    approvers = [entry["role"] for entry in found.get("approvals") or [] if entry.get("role")]
    for written in [*parsed.roles, *(role["name"] for role in found.get("roles") or []), *approvers]:
        name = merged.get(written.strip().casefold(), written.strip())
        key = name.casefold()
        if key and key not in roles and not is_placeholder(name):
            roles[key] = TemplateRole.objects.create(version=version, name=name[:120], position=len(roles))

    def role_for(name: str | None) -> TemplateRole | None:
        if not name:
            return None
        return roles.get(merged.get(name.strip().casefold(), name.strip()).casefold())

    # A whole version in a few statements: phases, then steps, then all items and code blocks (COPY).
    phases = TemplatePhase.objects.bulk_create(
        TemplatePhase(version=version, position=p_index, title=p.title[:500], description=p.description)
        for p_index, p in enumerate(parsed.phases)
    )
    pairs = [(phase, s_index, parsed_step) for phase, p in zip(phases, parsed.phases, strict=True)
             for s_index, parsed_step in enumerate(p.steps)]  # fmt: skip
    steps = TemplateStep.objects.bulk_create(
        TemplateStep(
            phase=phase,
            position=s_index,
            title=parsed_step.title[:500],
            number=(parsed_step.number or "")[:40],
            description=parsed_step.description,
            role=role_for(parsed_step.role),
            offset_minutes=parsed_step.offset_minutes,
            duration_min_minutes=parsed_step.duration_min_minutes,
            duration_max_minutes=parsed_step.duration_max_minutes,
            is_gate=bool(parsed_step.gates),
            section=(parsed_step.section or "")[:500],
            implicit=parsed_step.implicit,
        )
        for phase, s_index, parsed_step in pairs
    )
    levels: list[list[tuple[TemplateItem, TemplateItem | None]]] = []
    code_blocks: list[TemplateCodeBlock] = []
    sections: list[dict] = []
    line_positions: dict[int, tuple[int, int, int]] = {}
    for step, (phase, s_index, parsed_step) in zip(steps, pairs, strict=True):
        stored_lines = _store_step_content(step, parsed_step, levels, code_blocks)
        for line, position in stored_lines.items():
            line_positions.setdefault(line, (phase.position, s_index, position))
        sections.append(
            {
                "phase": phase.position,
                "step": s_index,
                "line": parsed_step.line or min(stored_lines, default=0),
                "phase_title": phase.title,
                "title": parsed_step.title,
                "offset_minutes": parsed_step.offset_minutes,
                "has_items": bool(parsed_step.items),
            }
        )
    # Every row gets its id first, so children can name their parents, then all go in one COPY.
    rows = [row for level in levels for row, _parent in level]
    allocate_ids(TemplateItem, rows)
    for level in levels:
        for row, parent in level:
            row.parent = parent
    copy_insert(TemplateItem, rows)
    copy_insert(TemplateCodeBlock, code_blocks)
    for step, (_phase, _s_index, parsed_step) in zip(steps, pairs, strict=True):
        _apply_action_block(step, parsed_step)
    TemplateTimelineEntry.objects.bulk_create(
        TemplateTimelineEntry(
            version=version,
            position=index,
            label=entry.label[:60],
            offset_minutes=entry.offset_minutes,
            activity=entry.activity,
            duration_min_minutes=entry.duration_min_minutes,
            duration_max_minutes=entry.duration_max_minutes,
            role=role_for(entry.role),
        )
        for index, entry in enumerate(parsed.timeline)
    )
    return sections, line_positions


def _store_step_content(
    step: TemplateStep,
    parsed_step: ParsedStep,
    levels: list[list[tuple[TemplateItem, TemplateItem | None]]],
    code_blocks: list[TemplateCodeBlock],
) -> dict[int, int]:
    """Items, fields, choices, gates and code blocks share one position sequence in reading order.

    That is the order render_markdown writes a step in (parsing.reading_order), so the war
    room reads like the runbook and an export puts everything back where it was. A fill-in
    written on a checkbox line (``on_item``) follows that checkbox's tree and is flagged, so
    the export writes it once, with the checkbox text, and not again on a line of its own.
    Rows are collected into ``levels`` (one list per tree depth) and ``code_blocks``, which the
    caller inserts for all steps at once, one tree level at a time: children need their parent's id.
    Returns the position of the row stored from each source line (the first, if several).
    """
    order = reading_order(parsed_step.items)
    entries: list[tuple[tuple[int, int, int], int, object]] = [
        ((tree, 0, 0), 0, item) for tree, item in enumerate(parsed_step.items, 1)
    ]
    for kind_order, elements in enumerate(
        (parsed_step.fields, parsed_step.choices, parsed_step.gates, parsed_step.code_blocks), 1
    ):
        entries += [(order(e.line, getattr(e, "on_item", False)), kind_order, e) for e in elements]
    entries.sort(key=lambda entry: entry[:2])

    position = 0
    stored_lines: dict[int, int] = {}

    def add(row: TemplateItem, parent: TemplateItem | None = None, depth: int = 0, line: int = 0) -> TemplateItem:
        nonlocal position
        if line:
            stored_lines.setdefault(line, position)
        row.step, row.position = step, position
        position += 1
        while len(levels) <= depth:
            levels.append([])
        levels[depth].append((row, parent))
        return row

    def add_tree(parsed_item: ParsedItem, parent: TemplateItem | None = None, depth: int = 0) -> None:
        node = add(
            TemplateItem(
                kind=ItemKind.CHECK,
                text=parsed_item.text,
                number=(parsed_item.number or "")[:40],
                initially_checked=parsed_item.checked,
                group=parsed_item.group or "",
            ),
            parent,
            depth,
            parsed_item.line,
        )
        for child in parsed_item.children:
            add_tree(child, node, depth + 1)

    for _key, _kind, entry in entries:
        if isinstance(entry, ParsedItem):
            add_tree(entry)
        elif isinstance(entry, ParsedField):
            add(
                TemplateItem(kind=ItemKind.FIELD, text=entry.label, hint=entry.hint[:300], on_item=entry.on_item),
                line=entry.line,
            )
        elif isinstance(entry, ParsedChoice | ParsedGate):
            add(
                TemplateItem(
                    kind=ItemKind.GATE if isinstance(entry, ParsedGate) else ItemKind.CHOICE,
                    text=entry.label,
                    options=list(entry.options),
                    option_notes=list(entry.notes),
                    selected=list(entry.selected),
                    on_item=entry.on_item,
                ),
                line=entry.line,
            )
        else:
            assert isinstance(entry, ParsedCodeBlock)
            code_blocks.append(TemplateCodeBlock(step=step, position=position, info=entry.info[:100], code=entry.code))
            position += 1
    return stored_lines


ACTION_FENCE = "warroom"


def is_action_block(info: str) -> bool:
    return info.strip().split(" ")[0].lower() == ACTION_FENCE


def action_problems(action: str, config: dict) -> str:
    """What is wrong with a step's automated action, in words ("" when nothing is).

    The one check for an import's ``warroom`` block and the editor's saves alike: the app
    that runs the actions (rollouts) knows what each one needs.
    """
    try:
        hooks.validate_action(action, config)
    except ValidationError as exc:
        return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
    return ""


def action_block_text(action: str, config: dict) -> str:
    """The JSON of a step's ``warroom`` block, as the editor writes it and an import reads it back."""
    return json.dumps({"action": action, **config}, indent=2, ensure_ascii=False)


def _apply_action_block(step: TemplateStep, parsed_step: ParsedStep) -> None:
    """A fenced block tagged ``warroom`` on a step defines its automated action, e.g.

        ```warroom
        {"action": "smoke", "checks": [{"type": "http", "url": "{base_url}/health"}]}
        ```

    The block stays in the step as code (so export keeps it); a bad one fails the
    import naming its line.
    """
    blocks = [b for b in parsed_step.code_blocks if is_action_block(b.info)]
    if not blocks:
        return
    if len(blocks) > 1:
        raise RunbookImportError("A step can carry one warroom action block, this is the second.", line=blocks[1].line)
    block = blocks[0]
    try:
        spec = json.loads(block.code)
    except ValueError as exc:
        raise RunbookImportError(f"The warroom action block is not valid JSON ({exc}).", line=block.line) from None
    if not isinstance(spec, dict) or "action" not in spec:
        raise RunbookImportError('The warroom block needs an "action".', line=block.line)
    action = spec.pop("action")
    messages = action_problems(action, spec)
    if messages:
        raise RunbookImportError(messages, line=_line_naming(block, messages)) from None
    step.action, step.action_config = action, spec
    step.save(update_fields=["action", "action_config"])


def _line_naming(block, message: str) -> int:
    """The line inside the block that holds the first setting the message names, else the fence's line."""
    lines = block.code.splitlines()
    words = re.findall(r"[A-Za-z_]+", message)
    containers = {"router", "gates", "checks", "stages"}  # a setting inside one is the better answer
    for word in [w for w in words if w not in containers] + [w for w in words if w in containers]:
        key = f'"{word}"'
        for offset, text in enumerate(lines):
            if key in text and re.search(re.escape(key) + r"\s*:", text):
                return block.line + 1 + offset
    return block.line


# --- back to Markdown ------------------------------------------------------------------


def version_to_parsed(version: RunbookVersion) -> ParsedRunbook:
    """The stored template as the parser's structure, so one renderer serves both.

    Positions stand in for source lines: they are in reading order (see
    _store_step_content), which is all the renderer needs to interleave items, fill-ins
    and code. A fill-in flagged ``on_item`` reads with the checkbox before it.
    """
    phases = []
    for phase in version.phases.prefetch_related("steps__items", "steps__code_blocks", "steps__role"):
        steps = []
        for step in phase.steps.all():
            items = list(step.items.all())
            children: dict[int | None, list[TemplateItem]] = {}
            for item in items:
                if item.kind == ItemKind.CHECK:
                    children.setdefault(item.parent_id, []).append(item)

            def tree(item, children=children):
                return ParsedItem(
                    text=item.text,
                    checked=item.initially_checked,
                    number=item.number or None,
                    line=item.position + 1,
                    children=[tree(c) for c in children.get(item.pk, [])],
                    group=item.group or None,
                )

            fields, choices, gates = [], [], []
            checkbox_line = 0
            for item in items:
                line = item.position + 1
                if item.kind == ItemKind.CHECK:
                    checkbox_line = line
                    continue
                if item.on_item and checkbox_line:
                    line = checkbox_line
                if item.kind == ItemKind.FIELD:
                    fields.append(ParsedField(label=item.text, line=line, hint=item.hint, on_item=item.on_item))
                else:
                    kind = ParsedGate if item.kind == ItemKind.GATE else ParsedChoice
                    (gates if kind is ParsedGate else choices).append(
                        kind(
                            label=item.text,
                            options=list(item.options),
                            line=line,
                            selected=list(item.selected),
                            notes=list(item.option_notes),
                            on_item=item.on_item,
                        )
                    )
            roots = [tree(item) for item in children.get(None, [])]
            order = reading_order(roots)
            for elements in (fields, choices, gates):
                elements.sort(key=lambda element, order=order: order(element.line, element.on_item))
            steps.append(
                ParsedStep(
                    title=step.title,
                    number=step.number or None,
                    line=0,
                    description=step.description,
                    role=step.role.name if step.role else None,
                    offset_minutes=step.offset_minutes,
                    duration_min_minutes=step.duration_min_minutes,
                    duration_max_minutes=step.duration_max_minutes,
                    items=roots,
                    fields=fields,
                    choices=choices,
                    gates=gates,
                    code_blocks=[ParsedCodeBlock(info=b.info, code=b.code, line=b.position + 1) for b in step.code_blocks.all()],
                    section=step.section or None,
                    implicit=step.implicit,
                )
            )
        phases.append(ParsedPhase(title=phase.title, line=0, description=phase.description, steps=steps))
    timeline = [
        ParsedTimelineEntry(
            label=t.label,
            offset_minutes=t.offset_minutes,
            activity=t.activity,
            duration_min_minutes=t.duration_min_minutes,
            duration_max_minutes=t.duration_max_minutes,
            role=t.role.name if t.role else None,
            line=0,
        )
        for t in version.timeline.select_related("role")
    ]
    return ParsedRunbook(
        title=version.title,
        description=version.description,
        phases=phases,
        roles=list(version.roles.values_list("name", flat=True)),
        timeline=timeline,
    )


def export_markdown(version: RunbookVersion) -> str:
    return render_markdown(version_to_parsed(version))
