"""Report sections other apps fill in: gates and votes, task runs, rollouts, incidents, the review.

The report knows these slots and their empty-state text; it does not know the apps
behind them. An app that has data for a slot registers a provider once, in its
``AppConfig.ready()``::

    from reports.sections import Section, Table, provide

    def gate_section(deployment) -> Section:
        return Section(summary="2 gates, both GO", tables=[Table(caption=..., columns=[...], rows=[[...]])],
                       records=[{...}])

    provide("gates", gate_section)

A provider gets the Deployment and returns a ``Section``: ``summary`` is the one line
the summary page shows, ``passages`` are titled blocks of free text (lessons learned,
minutes) printed before the tables with their line breaks kept, ``tables`` is what the
PDF and the Markdown print (cells are text, numbers, dates or aware datetimes, which are
shown in the deployment's time zone), and ``records`` is the structured data that goes
into the JSON record (anything JSON can hold). Every string is printed as text: markup a
user typed shows as the characters typed. Returning ``None`` or an empty Section means "nothing recorded": the report
then prints the slot's empty-state text. A provider that
raises does not lose the report: the section says it could not be collected.

Until the approvals app provides "gates", the gate lines of the checklist itself
(``☐ GO ☐ NO-GO``) fill it: who set each decision and when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from checklists.models import ItemKind
from deployments.models import Deployment, Item
from reports.formatting import local_time

log = logging.getLogger(__name__)


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Passage:
    """A titled block of free text, e.g. the review's lessons learned."""

    title: str
    text: str


@dataclass
class Section:
    summary: str = ""
    passages: list[Passage] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    records: list = field(default_factory=list)
    # Server-rendered SVG pictures (e.g. the rollout's metric charts, the same the war room shows).
    pictures: list[str] = field(default_factory=list)

    @property
    def is_empty(self):
        return not self.passages and not self.tables and not self.records and not self.pictures


@dataclass(frozen=True)
class Slot:
    key: str
    title: str
    empty_text: str


# Order here is the order in the report.
SLOTS = [
    Slot("gates", "Gates and decisions", "No gates were recorded."),
    Slot("task_runs", "Task runs", "No task runs were recorded."),
    Slot("rollouts", "Rollout", "No rollout was recorded."),
    Slot("incidents", "Incidents", "No incidents were recorded."),
    Slot("review", "Post-deployment review", "No post-deployment review was recorded."),
]
_SLOT_KEYS = {slot.key for slot in SLOTS}

Provider = Callable[[Deployment], Section | None]
_providers: dict[str, Provider] = {}


def provide(key: str, provider: Provider) -> None:
    """Register (or replace) the provider of one slot."""
    if key not in _SLOT_KEYS:
        raise ValueError(f"Unknown report section {key!r}; known: {', '.join(sorted(_SLOT_KEYS))}")
    _providers[key] = provider


def withdraw(key: str) -> None:
    """Remove a slot's provider (tests; an app being switched off)."""
    _providers.pop(key, None)


def collect(deployment: Deployment, *, zone: str | None = None) -> list[dict]:
    """Every slot, in report order, as JSON-ready dicts (the ``sections`` of the record)."""
    collected = []
    for slot in SLOTS:
        provider = _providers.get(slot.key) or _DEFAULTS.get(slot.key)
        section, problem = None, ""
        if provider is not None:
            try:
                section = provider(deployment)
            except Exception:
                # One app's bug must not cost the team its report; the gap is stated in it.
                log.exception("report section %s failed for deployment %s", slot.key, deployment.pk)
                problem = "This section could not be collected (see the server log)."
        section = section or Section()
        collected.append(
            {
                "key": slot.key,
                "title": slot.title,
                "summary": section.summary or problem or slot.empty_text,
                "empty_text": problem or slot.empty_text,
                "passages": [asdict(passage) for passage in section.passages if passage.text],
                "tables": [_printable(asdict(table), zone or deployment.timezone_name) for table in section.tables],
                "records": section.records,
                "pictures": [str(picture) for picture in section.pictures],
            }
        )
    return collected


def _printable(table: dict, zone: str) -> dict:
    table["rows"] = [[format_cell(cell, zone) for cell in row] for row in table["rows"]]
    return table


def format_cell(value, zone: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local_time(value, zone)
    return str(value)


# --- defaults from the deployment's own checklist -----------------------------------------


def _person(item: Item) -> str:
    if item.done_by_system:
        return item.done_by_system
    if item.done_by is not None:
        return item.done_by.get_full_name() or item.done_by.get_username()
    return ""


def checklist_gates(deployment: Deployment) -> Section | None:
    gates = list(
        Item.objects.filter(deployment=deployment, kind=ItemKind.GATE)
        .select_related("step__phase", "done_by")
        .order_by("step__phase__position", "step__position", "position", "id")
    )
    if not gates:
        return None
    rows, records = [], []
    for gate in gates:
        where = f"{gate.step.phase.title} › {gate.step.title}"
        decision = gate.value or "not decided"
        rows.append([gate.text, where, decision, _person(gate), gate.done_at, gate.note])
        records.append(
            {
                "item_id": gate.pk,
                "gate": gate.text,
                "step": where,
                "options": gate.options,
                "decision": gate.value,
                "decided_by": _person(gate),
                "decided_at": gate.done_at,
                "note": gate.note,
            }
        )
    decided = [g for g in gates if g.value]
    summary = f"{len(gates)} gate{'s' if len(gates) != 1 else ''}, {len(decided)} decided"
    if decided:
        summary += ": " + ", ".join(f"{g.value}" for g in decided)
    return Section(
        summary=summary,
        tables=[
            Table(
                caption="Go/no-go decisions from the checklist",
                columns=["Gate", "Where", "Decision", "Decided by", "When", "Note"],
                rows=rows,
                note="Recorded on the checklist line; individual votes appear when gates are run with voting.",
            )
        ],
        records=records,
    )


_DEFAULTS: dict[str, Provider] = {"gates": checklist_gates}
