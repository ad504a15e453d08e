"""Editing a runbook template: one function per change.

Each function checks that the person may edit runbooks, runs in one transaction,
locks the row that owns what changes (the version for its phases and roles, the
phase for its steps, the step for its items), validates, and either writes the
whole change or raises ``TemplateEditError`` with a sentence for the editor.

Deployments hold their own copy of the version they were created from, so these
edits never change a deployment that already exists.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from checklists.importing import action_block_text, action_problems, is_action_block
from checklists.models import (
    ItemKind,
    RunbookEdit,
    RunbookVersion,
    StepAction,
    TemplateCodeBlock,
    TemplateItem,
    TemplatePhase,
    TemplateRole,
    TemplateStep,
)

__all__ = [
    "TemplateEditError",
    "add_item",
    "add_phase",
    "add_step",
    "can_edit_runbooks",
    "format_duration",
    "format_offset",
    "move_item",
    "move_phase",
    "move_step",
    "parse_duration",
    "parse_offset",
    "remove_item",
    "remove_phase",
    "remove_rollout",
    "remove_step",
    "rename_phase",
    "rename_step",
    "rename_version",
    "set_rollout",
    "set_step_gate",
    "set_step_role",
    "set_step_timing",
]

MAX_OFFSET_MINUTES = 60 * 24 * 30  # a month either side of T-0
MAX_DURATION_MINUTES = 60 * 24 * 7
MAX_ITEM_TEXT = 2000
MAX_OPTIONS = 10
DEFAULT_GATE_OPTIONS = ["GO", "NO-GO"]
DEFAULT_GATE_LABEL = "Decision"
UP, DOWN = "up", "down"


class TemplateEditError(ValueError):
    """The edit cannot be applied as asked; ``str(error)`` says why, for the editor."""


def can_edit_runbooks(user) -> bool:
    """Importing and editing runbook templates: staff, or anyone granted ``checklists.change_runbook``."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.has_perm("checklists.change_runbook")


def can_read_runbooks(user) -> bool:
    """Reading runbook templates: editors, and people granted ``checklists.view_runbook``
    (the "Release managers" group has it: they make deployments from runbooks)."""
    return can_edit_runbooks(user) or (user is not None and user.is_active and user.has_perm("checklists.view_runbook"))


def require_reader(user) -> None:
    if not can_read_runbooks(user):
        raise PermissionDenied("Runbooks are read by runbook editors and release managers: ask an administrator.")


def _require_editor(user) -> None:
    if not can_edit_runbooks(user):
        raise PermissionDenied("Only runbook editors may change runbook templates (staff, or the “change runbook” permission).")


# --- the audit log ----------------------------------------------------------------------------


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step_label(step: TemplateStep) -> str:
    return _short(step.title)


def _version_of(step: TemplateStep) -> int:
    return TemplatePhase.objects.values_list("version_id", flat=True).get(pk=step.phase_id)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _quoted(name: str | None) -> str:
    return f"“{_short(name)}”" if name else "none"


def _timing(step: TemplateStep) -> dict:
    return {
        "start": format_offset(step.offset_minutes),
        "duration": format_duration(step.duration_min_minutes, step.duration_max_minutes),
    }


def _record_edit(user, version_id: int, action: str, summary: str, *, before=None, after=None) -> RunbookEdit:
    """One line in the runbook's audit log, inside the edit's own transaction (both or neither)."""
    runbook_id, number = RunbookVersion.objects.values_list("runbook_id", "number").get(pk=version_id)
    return RunbookEdit.objects.create(
        runbook_id=runbook_id,
        version_id=version_id,
        version_number=number,
        actor=user,
        actor_label=(user.get_full_name() or user.get_username())[:150],
        action=action,
        summary=summary[:500],
        before=before,
        after=after,
        created_at=timezone.now(),
    )


# --- offsets and durations as people type them ---------------------------------------------

_UNITS = {"d": 1440, "h": 60, "m": 1}
_AMOUNT = r"(\d+(?:\.\d+)?)\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?)?"
_OFFSET_RE = re.compile(rf"(?:t\s*)?(?P<sign>[+\-−–]?)\s*(?P<body>(?:{_AMOUNT}\s*)+)", re.IGNORECASE)
_CLOCK_OFFSET_RE = re.compile(r"(?:t\s*)?(?P<sign>[+\-−–]?)\s*(?P<h>\d+):(?P<m>[0-5]\d)", re.IGNORECASE)
_PART_RE = re.compile(_AMOUNT, re.IGNORECASE)


def _minutes(body: str, *, bare_unit: str = "m") -> int:
    """ "1h30m" -> 90, "1h30" -> 90 (minutes after hours), "2" -> 2, "1.5h" -> 90."""
    total = 0.0
    previous_unit = None
    for amount, unit in _PART_RE.findall(body):
        key = unit[0].lower() if unit else ("m" if previous_unit in ("h", "d") else bare_unit)
        total += float(amount) * _UNITS[key]
        previous_unit = key
    return round(total)


def parse_offset(text: str) -> int | None:
    """Minutes relative to T-0: "-60", "T-1h", "T+30", "T+1h30m", "-1:30", "T-0"; "" means none."""
    text = (text or "").strip()
    if not text:
        return None
    if re.fullmatch(r"t(?:\s*[-+±]?\s*0)?", text, re.IGNORECASE):
        return 0
    clock = _CLOCK_OFFSET_RE.fullmatch(text)
    if clock:
        minutes = int(clock.group("h")) * 60 + int(clock.group("m"))
        negative = clock.group("sign") not in ("", "+")
    else:
        match = _OFFSET_RE.fullmatch(text)
        if not match:
            raise TemplateEditError(f"“{text}” is not an offset: write minutes from T-0 like -90, T-1h, T+30 or T+1h30m.")
        minutes = _minutes(match.group("body"))
        negative = match.group("sign") not in ("", "+")
    if minutes > MAX_OFFSET_MINUTES:
        raise TemplateEditError("An offset must be within 30 days of T-0.")
    return -minutes if negative else minutes


def format_offset(minutes: int | None) -> str:
    """What parse_offset reads back: T-24h, T+5m, T+1h30m, T-0."""
    if minutes is None:
        return ""
    if minutes == 0:
        return "T-0"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    if not hours:
        return f"T{sign}{rest}m"
    return f"T{sign}{hours}h" + (f"{rest:02d}m" if rest else "")


def parse_duration(text: str) -> tuple[int | None, int | None]:
    """ "15", "10-15", "10–15 min", "1h", "1-2 hours" -> (low, high) in minutes; "" means none."""
    text = (text or "").strip()
    if not text:
        return None, None
    parts = re.split(r"\s*(?:-|–|—|\bto\b)\s*", text, maxsplit=1)
    unit = re.search(r"(d|days?|h|hrs?|hours?|m|mins?|minutes?)\s*$", text, re.IGNORECASE)
    values = []
    for part in parts:
        if not re.fullmatch(rf"(?:{_AMOUNT}\s*)+", part, re.IGNORECASE):
            raise TemplateEditError(f"“{text}” is not a duration: write minutes like 15, 10-15, 1h or 1-2 hours.")
        # "1-2 hours": the unit written once at the end applies to both numbers.
        bare_unit = unit.group(1)[0].lower() if unit and len(parts) == 2 else "m"
        values.append(_minutes(part, bare_unit=bare_unit))
    low, high = values[0], values[-1]
    if low > high:
        raise TemplateEditError(f"In “{text}” the shortest duration comes first (e.g. 10-15).")
    if high > MAX_DURATION_MINUTES:
        raise TemplateEditError("A step lasting more than a week is not a step: split it.")
    return low, high


def format_duration(low: int | None, high: int | None) -> str:
    low = low if low is not None else high
    high = high if high is not None else low
    if low is None:
        return ""
    return f"{low} min" if low == high else f"{low}–{high} min"


# --- text ---------------------------------------------------------------------------------

_BLANK_RE = re.compile(r"_{3,}")
_BOX_RE = re.compile(r"[☐☑☒□]|\[[ xX]\]")


def _title(text: str, *, what: str, max_length: int) -> str:
    """Headings are one line: whitespace collapses, as the Markdown export writes them."""
    title = " ".join((text or "").split())
    if not title:
        raise TemplateEditError(f"The {what} needs a title.")
    if len(title) > max_length:
        raise TemplateEditError(f"The {what} title is {len(title)} characters long; the limit is {max_length}.")
    return title


def _item_text(text: str, kind: str) -> str:
    text = " ".join((text or "").split())
    what = "item" if kind == ItemKind.CHECK else "label"
    if not text and kind in (ItemKind.CHECK, ItemKind.FIELD):
        raise TemplateEditError(f"The {what} needs some text.")
    if len(text) > MAX_ITEM_TEXT:
        raise TemplateEditError(f"The {what} is {len(text)} characters long; the limit is {MAX_ITEM_TEXT}.")
    # These would read back as different items after a Markdown export and import.
    if _BLANK_RE.search(text):
        raise TemplateEditError("Write the label without the blank (____): choose the kind “Field” for a fill-in.")
    if _BOX_RE.search(text):
        raise TemplateEditError("Write the text without boxes (☐, [ ]): choose the kind “Choice” for options to pick from.")
    if kind != ItemKind.CHECK and (text.endswith(":") or "**" in text):
        raise TemplateEditError("Write the label without a trailing colon or ** markup: the export adds them.")
    return text


def _options(raw: str | list[str], kind: str) -> list[str]:
    if isinstance(raw, str):
        raw = re.split(r"[,/|]", raw)
    options = [" ".join(option.split()) for option in raw]
    options = [option for option in options if option]
    if kind == ItemKind.GATE and not options:
        return list(DEFAULT_GATE_OPTIONS)
    if len(options) < 2:
        raise TemplateEditError("A choice needs at least two options, separated by commas (e.g. Success, Failed).")
    if len(options) > MAX_OPTIONS:
        raise TemplateEditError(f"A choice can have at most {MAX_OPTIONS} options.")
    if len({option.casefold() for option in options}) != len(options):
        raise TemplateEditError("Each option can appear only once.")
    for option in options:
        if _BOX_RE.search(option) or _BLANK_RE.search(option) or len(option) > 60:
            raise TemplateEditError(f"“{option[:60]}” cannot be an option: keep options short, without boxes or blanks.")
        if re.search(r"\([^()]*\)$", option):  # the Markdown reads a trailing "(…)" as a note, not as the option
            raise TemplateEditError(f"Write “{option}” without the part in parentheses: options are short words like Success.")
    keys = {re.sub(r"[\s_–—]+", "-", option.upper()) for option in options}
    says_gate = {"GO", "NO-GO"} <= keys or {"GO-LIVE", "ROLLBACK"} <= keys
    if kind == ItemKind.CHOICE and says_gate:
        raise TemplateEditError("GO / NO-GO options make a go/no-go gate: choose the kind “Gate”.")
    if kind == ItemKind.GATE and not says_gate:
        raise TemplateEditError("A gate's options are GO and NO-GO (or GO-LIVE and ROLLBACK).")
    return options


# --- locking and reordering -------------------------------------------------------------------
#
# Every edit locks its version first, then the row it changes: edits of one version
# queue behind each other (they are rare and quick), and two edits can never take
# the same locks in opposite orders.


def _lock_version(version_id: int) -> RunbookVersion:
    return RunbookVersion.objects.select_for_update().get(pk=version_id)


def _locked_phase(phase_id: int) -> TemplatePhase:
    _lock_version(TemplatePhase.objects.values_list("version_id", flat=True).get(pk=phase_id))
    return TemplatePhase.objects.select_for_update().get(pk=phase_id)


def _locked_step(step_id: int) -> TemplateStep:
    _lock_version(TemplateStep.objects.values_list("phase__version_id", flat=True).get(pk=step_id))
    return TemplateStep.objects.select_for_update().get(pk=step_id)


def _locked_item(item_id: int) -> TemplateItem:
    _lock_version(TemplateItem.objects.values_list("step__phase__version_id", flat=True).get(pk=item_id))
    return TemplateItem.objects.select_for_update().get(pk=item_id)


def _direction(direction: str) -> int:
    if direction not in (UP, DOWN):
        raise TemplateEditError("Move up or down.")
    return -1 if direction == UP else 1


def _renumber(model, rows) -> None:
    """Positions 0..n-1 in list order, writing only the rows that moved."""
    changed = []
    for position, row in enumerate(rows):
        if row.position != position:
            row.position = position
            changed.append(row)
    if changed:
        model.objects.bulk_update(changed, ["position"])


def _swap(model, rows: list, pk: int, direction: str, *, what: str, within: str) -> None:
    offset = _direction(direction)
    index = next(i for i, row in enumerate(rows) if row.pk == pk)
    target = index + offset
    if not 0 <= target < len(rows):
        raise TemplateEditError(f"That {what} is already the {'first' if offset < 0 else 'last'} {within}.")
    rows[index], rows[target] = rows[target], rows[index]
    _renumber(model, rows)


# --- the version -----------------------------------------------------------------------------


def rename_version(user, version_id: int, title: str) -> RunbookVersion:
    _require_editor(user)
    title = _title(title, what="runbook version", max_length=300)
    with transaction.atomic():
        version = _lock_version(version_id)
        before = version.title
        version.title = title
        version.save(update_fields=["title"])
        _record_edit(
            user,
            version.pk,
            "version.rename",
            f"Renamed the version “{_short(before)}” → “{_short(title)}”",
            before={"title": before},
            after={"title": title},
        )
    return version


# --- phases ----------------------------------------------------------------------------------


def add_phase(user, version_id: int, title: str) -> TemplatePhase:
    _require_editor(user)
    title = _title(title, what="phase", max_length=500)
    with transaction.atomic():
        version = _lock_version(version_id)
        last = version.phases.aggregate(n=Max("position"))["n"]
        phase = TemplatePhase.objects.create(version=version, title=title, position=0 if last is None else last + 1)
        _record_edit(user, version.pk, "phase.add", f"Added phase “{_short(title)}”", after={"phase": title})
        return phase


def rename_phase(user, phase_id: int, title: str) -> TemplatePhase:
    _require_editor(user)
    title = _title(title, what="phase", max_length=500)
    with transaction.atomic():
        phase = _locked_phase(phase_id)
        before = phase.title
        phase.title = title
        phase.save(update_fields=["title"])
        _record_edit(
            user,
            phase.version_id,
            "phase.rename",
            f"Renamed phase “{_short(before)}” → “{_short(title)}”",
            before={"title": before},
            after={"title": title},
        )
    return phase


def move_phase(user, phase_id: int, direction: str) -> TemplatePhase:
    _require_editor(user)
    _direction(direction)
    with transaction.atomic():
        phase = _locked_phase(phase_id)
        phases = list(TemplatePhase.objects.select_for_update().filter(version_id=phase.version_id).order_by("position", "id"))
        _swap(TemplatePhase, phases, phase.pk, direction, what="phase", within="in this runbook")
        _record_edit(user, phase.version_id, "phase.move", f"Moved phase “{_short(phase.title)}” {direction}")
    return phase


def remove_phase(user, phase_id: int) -> RunbookVersion:
    """Removes the phase with its steps and items; a version keeps at least one phase."""
    _require_editor(user)
    with transaction.atomic():
        phase = _locked_phase(phase_id)
        phases = list(TemplatePhase.objects.select_for_update().filter(version_id=phase.version_id).order_by("position", "id"))
        if len(phases) == 1:
            raise TemplateEditError("A runbook needs at least one phase: add another before removing this one.")
        steps = phase.steps.count()
        items = TemplateItem.objects.filter(step__phase=phase).count()
        _record_edit(
            user,
            phase.version_id,
            "phase.remove",
            f"Removed phase “{_short(phase.title)}” with {_count(steps, 'step')} and {_count(items, 'item')}",
            before={"phase": phase.title, "steps": steps, "items": items},
        )
        phase.delete()
        _renumber(TemplatePhase, [p for p in phases if p.pk != phase_id])
    return RunbookVersion.objects.get(pk=phase.version_id)


# --- steps -----------------------------------------------------------------------------------


def add_step(user, phase_id: int, title: str) -> TemplateStep:
    _require_editor(user)
    title = _title(title, what="step", max_length=500)
    with transaction.atomic():
        phase = _locked_phase(phase_id)
        last = phase.steps.aggregate(n=Max("position"))["n"]
        step = TemplateStep.objects.create(phase=phase, title=title, position=0 if last is None else last + 1)
        _record_edit(
            user,
            phase.version_id,
            "step.add",
            f"Added step “{_short(title)}” to phase “{_short(phase.title)}”",
            after={"step": title, "phase": phase.title},
        )
        return step


def rename_step(user, step_id: int, title: str) -> TemplateStep:
    _require_editor(user)
    title = _title(title, what="step", max_length=500)
    with transaction.atomic():
        step = _locked_step(step_id)
        before = step.title
        step.title = title
        step.save(update_fields=["title"])
        _record_edit(
            user,
            _version_of(step),
            "step.rename",
            f"Renamed step “{_short(before)}” → “{_short(title)}”",
            before={"title": before},
            after={"title": title},
        )
    return step


def move_step(user, step_id: int, direction: str) -> tuple[TemplateStep, bool]:
    """Up or down within its phase; past the first or last step it moves into the neighbouring phase.

    Returns the step and whether it changed phase.
    """
    _require_editor(user)
    offset = _direction(direction)
    with transaction.atomic():
        step = _locked_step(step_id)
        steps = list(TemplateStep.objects.select_for_update().filter(phase_id=step.phase_id).order_by("position", "id"))
        index = next(i for i, row in enumerate(steps) if row.pk == step.pk)
        if 0 <= index + offset < len(steps):
            _swap(TemplateStep, steps, step.pk, direction, what="step", within="in this phase")
            _record_edit(user, _version_of(step), "step.move", f"Moved step “{_step_label(step)}” {direction}")
            return step, False
        version_id = TemplatePhase.objects.values_list("version_id", flat=True).get(pk=step.phase_id)
        phases = list(TemplatePhase.objects.filter(version_id=version_id).order_by("position", "id"))
        phase_index = next(i for i, p in enumerate(phases) if p.pk == step.phase_id)
        if not 0 <= phase_index + offset < len(phases):
            raise TemplateEditError(f"That step is already the {'first' if offset < 0 else 'last'} in this runbook.")
        target = phases[phase_index + offset]
        target_steps = list(TemplateStep.objects.select_for_update().filter(phase=target).order_by("position", "id"))
        _renumber(TemplateStep, [row for row in steps if row.pk != step.pk])
        step.phase = target
        step.save(update_fields=["phase"])
        _renumber(TemplateStep, [*target_steps, step] if offset < 0 else [step, *target_steps])
        source = phases[phase_index]
        _record_edit(
            user,
            version_id,
            "step.move",
            f"Moved step “{_step_label(step)}” {direction} from phase “{_short(source.title)}” into “{_short(target.title)}”",
            before={"phase": source.title},
            after={"phase": target.title},
        )
        return step, True


def remove_step(user, step_id: int) -> TemplatePhase:
    """Removes the step with its items and code blocks."""
    _require_editor(user)
    with transaction.atomic():
        step = _locked_step(step_id)
        phase = TemplatePhase.objects.get(pk=step.phase_id)
        steps = list(TemplateStep.objects.select_for_update().filter(phase=phase).order_by("position", "id"))
        items = step.items.count()
        _record_edit(
            user,
            phase.version_id,
            "step.remove",
            f"Removed step “{_step_label(step)}” with {_count(items, 'item')} from phase “{_short(phase.title)}”",
            before={"step": step.title, "phase": phase.title, "items": items},
        )
        step.delete()
        _renumber(TemplateStep, [row for row in steps if row.pk != step_id])
    return phase


def set_step_role(user, step_id: int, *, role_id: int | None = None, new_role: str = "") -> TemplateStep:
    """Give the step one of its version's roles, a new role (added to the version), or none."""
    _require_editor(user)
    name = " ".join((new_role or "").split())
    if len(name) > 120:
        raise TemplateEditError("A role name can be at most 120 characters long.")
    with transaction.atomic():
        step = _locked_step(step_id)
        roles = TemplateRole.objects.filter(version__phases__steps=step)
        if name:
            role = roles.filter(name__iexact=name).first()
            if role is None:
                version = RunbookVersion.objects.get(phases__steps=step)
                last = version.roles.aggregate(n=Max("position"))["n"]
                role = TemplateRole.objects.create(version=version, name=name, position=0 if last is None else last + 1)
        elif role_id is not None:
            role = roles.filter(pk=role_id).first()
            if role is None:
                raise TemplateEditError("That role does not belong to this runbook version.")
        else:
            role = None
        before = step.role.name if step.role_id else None
        step.role = role
        step.save(update_fields=["role"])
        after = role.name if role else None
        _record_edit(
            user,
            _version_of(step),
            "step.role",
            f"Step “{_step_label(step)}”: role {_quoted(before)} → {_quoted(after)}",
            before={"role": before},
            after={"role": after},
        )
    return step


def set_step_timing(user, step_id: int, *, offset: str = "", duration: str = "") -> TemplateStep:
    """Planned start (minutes from T-0; "T-1h" style accepted) and duration ("10-15")."""
    _require_editor(user)
    offset_minutes = parse_offset(offset)
    low, high = parse_duration(duration)
    with transaction.atomic():
        step = _locked_step(step_id)
        before = _timing(step)
        step.offset_minutes = offset_minutes
        step.duration_min_minutes, step.duration_max_minutes = low, high
        step.save(update_fields=["offset_minutes", "duration_min_minutes", "duration_max_minutes"])
        after = _timing(step)
        _record_edit(
            user,
            _version_of(step),
            "step.timing",
            f"Step “{_step_label(step)}”: start {before['start'] or 'none'} → {after['start'] or 'none'}, "
            f"duration {before['duration'] or 'none'} → {after['duration'] or 'none'}",
            before=before,
            after=after,
        )
    return step


def set_step_gate(user, step_id: int, is_gate: bool) -> tuple[TemplateStep, TemplateItem | None]:
    """Mark the step as a go/no-go decision point.

    A gate step carries a GO / NO-GO item (that is what the war room votes on and
    what the Markdown export writes), so marking one without such an item adds it.
    Unmarking is refused while the step still has one: remove that item first.
    Returns the step and the gate item added, if any.
    """
    _require_editor(user)
    with transaction.atomic():
        step = _locked_step(step_id)
        has_gate_item = step.items.filter(kind=ItemKind.GATE).exists()
        if not is_gate and has_gate_item:
            raise TemplateEditError("This step still has a go/no-go item: remove that item to stop it being a gate.")
        added = None
        if is_gate and not has_gate_item:
            added = _append_item(step, ItemKind.GATE, DEFAULT_GATE_LABEL, list(DEFAULT_GATE_OPTIONS))
        if step.is_gate != is_gate:
            step.is_gate = is_gate
            step.save(update_fields=["is_gate"])
            _record_edit(
                user,
                _version_of(step),
                "step.gate",
                f"Step “{_step_label(step)}” {'marked as a go/no-go gate' if is_gate else 'is no longer a gate'}",
                before={"is_gate": not is_gate},
                after={"is_gate": is_gate},
            )
    return step, added


# --- items -----------------------------------------------------------------------------------
#
# A step's items keep positions in reading order over the whole tree (a parent, its
# nested items, then the next item), as an import stores them: the war room snapshot
# and the Markdown export both rely on parents coming before their children.


def _append_item(step: TemplateStep, kind: str, text: str, options: list[str]) -> TemplateItem:
    """At the end of the step, after its code blocks too (items and code share one position sequence)."""
    ends = [step.items.aggregate(n=Max("position"))["n"], step.code_blocks.aggregate(n=Max("position"))["n"]]
    last = max((n for n in ends if n is not None), default=None)
    return TemplateItem.objects.create(step=step, kind=kind, text=text, options=options, position=0 if last is None else last + 1)


def add_item(user, step_id: int, *, kind: str = ItemKind.CHECK, text: str, options: str | list[str] = "") -> TemplateItem:
    """A checkbox, fill-in field, choice or go/no-go gate at the end of the step.

    Adding a gate makes the step a gate step, as an import does.
    """
    _require_editor(user)
    if kind not in ItemKind.values:
        raise TemplateEditError(f"Unknown kind of item “{kind}”: use one of {', '.join(ItemKind.values)}.")
    text = _item_text(text, kind)
    if kind == ItemKind.CHOICE and not text:
        raise TemplateEditError("The choice needs a label.")
    if kind == ItemKind.GATE and not text:
        text = DEFAULT_GATE_LABEL
    option_list = _options(options, kind) if kind in (ItemKind.CHOICE, ItemKind.GATE) else []
    with transaction.atomic():
        step = _locked_step(step_id)
        item = _append_item(step, kind, text, option_list)
        if kind == ItemKind.GATE and not step.is_gate:
            step.is_gate = True
            step.save(update_fields=["is_gate"])
        _record_edit(
            user,
            _version_of(step),
            "item.add",
            f"Added {ItemKind(kind).label.lower()} “{_short(text)}” to step “{_step_label(step)}”",
            after={"kind": kind, "text": text, "options": option_list},
        )
    return item


def move_item(user, item_id: int, direction: str) -> TemplateItem:
    """Up or down among the items at its level; nested items move with their parent."""
    _require_editor(user)
    offset = _direction(direction)
    with transaction.atomic():
        item = _locked_item(item_id)
        items = list(TemplateItem.objects.select_for_update().filter(step_id=item.step_id).order_by("position", "id"))
        children: dict[int | None, list[TemplateItem]] = {}
        for row in items:
            children.setdefault(row.parent_id, []).append(row)
        siblings = children[item.parent_id]
        index = next(i for i, row in enumerate(siblings) if row.pk == item.pk)
        target = index + offset
        if not 0 <= target < len(siblings):
            where = "first" if offset < 0 else "last"
            level = "in this step" if item.parent_id is None else "at its level"
            raise TemplateEditError(f"That item is already the {where} {level}.")
        siblings[index], siblings[target] = siblings[target], siblings[index]
        ordered: list[TemplateItem] = []

        def walk(parent_id):
            for row in children.get(parent_id, []):
                ordered.append(row)
                walk(row.pk)

        walk(None)
        # The items take the same position values in their new order, so code blocks (numbered
        # in the same sequence by an import) keep their place between them.
        slots = sorted(row.position for row in items)
        if len(set(slots)) != len(slots):  # equal positions (rows made elsewhere): number afresh
            _renumber(TemplateItem, ordered)
        else:
            changed = []
            for slot, row in zip(slots, ordered, strict=True):
                if row.position != slot:
                    row.position = slot
                    changed.append(row)
            TemplateItem.objects.bulk_update(changed, ["position"])
        step = TemplateStep.objects.get(pk=item.step_id)
        _record_edit(
            user, _version_of(step), "item.move", f"Moved item “{_short(item.text)}” {direction} in step “{_step_label(step)}”"
        )
    return item


def remove_item(user, item_id: int) -> TemplateStep:
    """Removes the item and the items nested under it."""
    _require_editor(user)
    with transaction.atomic():
        item = _locked_item(item_id)
        step = TemplateStep.objects.get(pk=item.step_id)
        nested = TemplateItem.objects.filter(step=step, parent=item).count()
        _record_edit(
            user,
            _version_of(step),
            "item.remove",
            f"Removed item “{_short(item.text)}”"
            + (f" and {nested} nested" if nested else "")
            + f" from step “{_step_label(step)}”",
            before={"kind": item.kind, "text": item.text, "options": item.options, "nested": nested},
        )
        item.delete()
    return step


# --- the rollout plan ---------------------------------------------------------------------------
#
# One step of a version carries the traffic rollout: its action is "rollout" and its settings
# are the plan. The step keeps the plan as its ``warroom`` block too (a code block), as an
# import leaves it, so the Markdown export writes the plan back and an import reads it again.


def _plan_words(config: dict) -> str:
    weights = " → ".join(f"{stage.get('weight')} %" for stage in config.get("stages") or [])
    gates = len(config.get("gates") or [])
    return f"{weights or 'one stage'}, {_count(gates, 'metric gate')}"


def _write_action_block(step: TemplateStep, text: str | None) -> None:
    """Replace the step's warroom block with ``text`` (None: remove it); a new one goes at the end."""
    blocks = [block for block in step.code_blocks.select_for_update().order_by("position", "id") if is_action_block(block.info)]
    if text is None:
        for block in blocks:
            block.delete()
        return
    if blocks:
        first, *others = blocks
        first.code = text
        first.save(update_fields=["code"])
        for block in others:
            block.delete()
        return
    ends = [step.items.aggregate(n=Max("position"))["n"], step.code_blocks.aggregate(n=Max("position"))["n"]]
    last = max((n for n in ends if n is not None), default=None)
    TemplateCodeBlock.objects.create(step=step, position=0 if last is None else last + 1, info="warroom", code=text)


def _clear_rollout(step: TemplateStep) -> None:
    step.action, step.action_config = "", {}
    step.save(update_fields=["action", "action_config"])
    _write_action_block(step, None)


def set_rollout(user, version_id: int, step_id: int, config: dict) -> TemplateStep:
    """Make ``step_id`` the version's rollout step with the plan ``config`` (a plan spec).

    The plan is checked exactly as an imported ``warroom`` block is. Another step that
    carried the rollout gives it up; a step that runs another automated action is refused.
    """
    _require_editor(user)
    problems = action_problems(StepAction.ROLLOUT, config)
    if problems:
        raise TemplateEditError(f"The rollout plan cannot be saved: {problems}.")
    with transaction.atomic():
        _lock_version(version_id)
        step = TemplateStep.objects.select_for_update().filter(pk=step_id, phase__version_id=version_id).first()
        if step is None:
            raise TemplateEditError("That step is not in this runbook version: reload the page.")
        if step.action and step.action != StepAction.ROLLOUT:
            raise TemplateEditError(
                f"Step “{_step_label(step)}” already runs {step.get_action_display().lower()}: "
                "a step carries one automated action, so choose another step for the rollout."
            )
        previous = list(
            TemplateStep.objects.select_for_update()
            .filter(phase__version_id=version_id, action=StepAction.ROLLOUT)
            .exclude(pk=step.pk)
            .order_by("phase__position", "position")
        )
        before = {"step": None, "plan": None}
        if step.action == StepAction.ROLLOUT:
            before = {"step": step.title, "plan": step.action_config}
        elif previous:
            before = {"step": previous[0].title, "plan": previous[0].action_config}
        for other in previous:
            _clear_rollout(other)
        step.action, step.action_config = StepAction.ROLLOUT, config
        step.save(update_fields=["action", "action_config"])
        _write_action_block(step, action_block_text(StepAction.ROLLOUT, config))
        moved = f" (moved from step “{_short(previous[0].title)}”)" if previous else ""
        _record_edit(
            user,
            version_id,
            "step.rollout",
            f"Rollout plan on step “{_step_label(step)}”{moved}: {_plan_words(config)}",
            before=before,
            after={"step": step.title, "plan": config},
        )
    return step


def remove_rollout(user, version_id: int) -> None:
    """The version no longer carries a rollout plan: its step keeps its items and loses the action."""
    _require_editor(user)
    with transaction.atomic():
        _lock_version(version_id)
        steps = list(
            TemplateStep.objects.select_for_update()
            .filter(phase__version_id=version_id, action=StepAction.ROLLOUT)
            .order_by("phase__position", "position")
        )
        if not steps:
            raise TemplateEditError("This version has no rollout plan to remove.")
        _record_edit(
            user,
            version_id,
            "step.rollout_remove",
            f"Removed the rollout plan from step “{_step_label(steps[0])}”: {_plan_words(steps[0].action_config)}",
            before={"step": steps[0].title, "plan": steps[0].action_config},
        )
        for step in steps:
            _clear_rollout(step)
