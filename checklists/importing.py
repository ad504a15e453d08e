"""Store a parsed runbook as a template version, and turn a version back into Markdown.

Parsing (checklists.parsing) knows Markdown; this module knows the database. An
import is one transaction: it either stores the whole version or nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Max

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
)
from checklists.rendering import render_markdown

__all__ = ["ImportOutcome", "RunbookImportError", "export_markdown", "import_runbook", "version_to_parsed"]


@dataclass
class ImportOutcome:
    parsed: ParsedRunbook
    version: RunbookVersion | None  # None for a dry run
    created_runbook: bool = False

    def summary(self) -> dict:
        counts = self.parsed.counts()
        if self.version is not None:
            counts.update(runbook_id=self.version.runbook_id, version_id=self.version.pk, version=self.version.number)
        return counts


def import_runbook(
    data: bytes | str, *, filename: str = "", user=None, runbook: Runbook | None = None, dry_run: bool = False
) -> ImportOutcome:
    """Parse and store a runbook. Importing into an existing runbook adds a version.

    Without ``runbook``, a runbook with the same name as the document's title gets
    the new version, so importing the same file twice gives v1 and v2, not two
    runbooks. Raises RunbookImportError with a message for the person uploading.
    """
    raw = data.encode() if isinstance(data, str) else data
    parsed = parse_runbook(raw, max_bytes=settings.RUNBOOK_MAX_BYTES)
    if dry_run:
        return ImportOutcome(parsed=parsed, version=None)
    with transaction.atomic():
        created = False
        if runbook is None:
            runbook = Runbook.objects.select_for_update().filter(name=parsed.title[:300]).first()
        if runbook is None:
            runbook = Runbook.objects.create(name=parsed.title[:300], created_by=user)
            created = True
        else:
            runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
        number = (runbook.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = RunbookVersion.objects.create(
            runbook=runbook,
            number=number,
            title=parsed.title[:300],
            description=parsed.description,
            source_filename=filename[:255],
            source_sha256=hashlib.sha256(raw).hexdigest(),
            created_by=user,
        )
        _store(version, parsed)
    return ImportOutcome(parsed=parsed, version=version, created_runbook=created)


def _store(version: RunbookVersion, parsed: ParsedRunbook) -> None:
    roles: dict[str, TemplateRole] = {}

    def role_for(name: str | None) -> TemplateRole | None:
        if not name:
            return None
        key = name.strip().casefold()
        if key not in roles:
            roles[key] = TemplateRole.objects.create(version=version, name=name.strip()[:120], position=len(roles))
        return roles[key]

    for name in parsed.roles:
        role_for(name)
    for p_index, parsed_phase in enumerate(parsed.phases):
        phase = TemplatePhase.objects.create(
            version=version, position=p_index, title=parsed_phase.title[:500], description=parsed_phase.description
        )
        for s_index, parsed_step in enumerate(parsed_phase.steps):
            step = TemplateStep.objects.create(
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
            )
            _store_step_content(step, parsed_step)
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


def _store_step_content(step: TemplateStep, parsed_step: ParsedStep) -> None:
    """Items keep their source order, whatever their kind, so the war room reads like the runbook."""
    position = 0

    def add(kind, text, *, parent=None, number="", checked=False, options=()):
        nonlocal position
        position += 1
        return TemplateItem.objects.create(
            step=step,
            parent=parent,
            position=position,
            kind=kind,
            text=text,
            number=(number or "")[:40],
            initially_checked=checked,
            options=list(options),
        )

    def add_tree(parsed_item: ParsedItem, parent=None):
        node = add(ItemKind.CHECK, parsed_item.text, parent=parent, number=parsed_item.number, checked=parsed_item.checked)
        for child in parsed_item.children:
            add_tree(child, node)

    entries = [(i.line, 0, i) for i in parsed_step.items] + [(f.line, 1, f) for f in parsed_step.fields]
    entries += [(c.line, 2, c) for c in parsed_step.choices] + [(g.line, 3, g) for g in parsed_step.gates]
    for _line, _order, entry in sorted(entries, key=lambda e: (e[0], e[1])):
        if isinstance(entry, ParsedItem):
            add_tree(entry)
        elif isinstance(entry, ParsedField):
            add(ItemKind.FIELD, entry.label)
        elif isinstance(entry, ParsedGate):
            add(ItemKind.GATE, entry.label, options=entry.options)
        else:
            add(ItemKind.CHOICE, entry.label, options=entry.options)
    TemplateCodeBlock.objects.bulk_create(
        TemplateCodeBlock(step=step, position=index, info=block.info[:100], code=block.code)
        for index, block in enumerate(parsed_step.code_blocks)
    )


ACTION_FENCE = "warroom"


def _apply_action_block(step: TemplateStep, parsed_step: ParsedStep) -> None:
    """A fenced block tagged ``warroom`` on a step defines its automated action, e.g.

        ```warroom
        {"action": "smoke", "checks": [{"type": "http", "url": "{base_url}/health"}]}
        ```

    The block stays in the step as code (so export keeps it); a bad one fails the
    import naming its line.
    """
    import json

    from django.core.exceptions import ValidationError

    from rollouts.actions import validate_action

    blocks = [b for b in parsed_step.code_blocks if b.info.strip().split(" ")[0].lower() == ACTION_FENCE]
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
    try:
        validate_action(action, spec)
    except ValidationError as exc:
        messages = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        raise RunbookImportError(messages, line=block.line) from None
    step.action, step.action_config = action, spec
    step.save(update_fields=["action", "action_config"])


# --- back to Markdown ------------------------------------------------------------------


def version_to_parsed(version: RunbookVersion) -> ParsedRunbook:
    """The stored template as the parser's structure, so one renderer serves both."""
    phases = []
    for phase in version.phases.prefetch_related("steps__items", "steps__code_blocks", "steps__role"):
        steps = []
        for step in phase.steps.all():
            items = list(step.items.all())
            children: dict[int, list[TemplateItem]] = {}
            for item in items:
                children.setdefault(item.parent_id, []).append(item)

            def tree(item, children=children):
                return ParsedItem(
                    text=item.text,
                    checked=item.initially_checked,
                    number=item.number or None,
                    line=0,
                    children=[tree(c) for c in children.get(item.pk, [])],
                )

            roots = children.get(None, [])
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
                    items=[tree(i) for i in roots if i.kind == ItemKind.CHECK],
                    fields=[ParsedField(label=i.text, line=0) for i in roots if i.kind == ItemKind.FIELD],
                    choices=[
                        ParsedChoice(label=i.text, options=list(i.options), line=0) for i in roots if i.kind == ItemKind.CHOICE
                    ],
                    gates=[ParsedGate(label=i.text, options=list(i.options), line=0) for i in roots if i.kind == ItemKind.GATE],
                    code_blocks=[ParsedCodeBlock(info=b.info, code=b.code, line=0) for b in step.code_blocks.all()],
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
