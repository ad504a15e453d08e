"""Reading the event log as an auditor does: filtered, one line per event in words, exported.

The page, the CSV and the JSON export all start from ``EventLogFilter`` and
``filtered_events``, so one querystring gives the same events in all three. Times are
shown to the second in the deployment's zone (the zone named) and exported as ISO UTC.

Nothing here writes: the log is append-only and hash-chained (deployments.events).
Which step an event belongs to is read from the object it names (an item's step, a
step, or what another app registers with ``hooks.place_events_in_steps``): items never
move between steps, so old events are placed as well as new ones.
"""

from __future__ import annotations

import csv
import json
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import QueryDict

from deployments import hooks
from deployments.models import Deployment, DeploymentState, Event, Item, Step

PAGE_SIZE = 100
TIME_FORMATS_HELP = "e.g. 2031-07-01 22:05 or 2031-07-01T22:05:30"
# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def zone_of(deployment: Deployment) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(deployment.timezone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_seconds(value: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """2031-07-01 22:05:30 CEST"""
    local = value.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def utc_seconds(value: datetime) -> str:
    """2031-07-01T20:05:30Z (the hashed value keeps its microseconds; an auditor reads seconds)."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- where events stand in the runbook ------------------------------------------------------


@dataclass(frozen=True)
class StepRef:
    pk: int
    number: str
    title: str

    @property
    def label(self) -> str:
        return f"step {self.number} “{self.title}”" if self.number else f"step “{self.title}”"


def step_places(deployment: Deployment) -> tuple[dict[int, StepRef], dict[tuple[str, str], int]]:
    """The deployment's steps, and which step each object the log names stands in:
    ``{("item", "12"): step_id, ("step", "3"): 3, …}``."""
    steps = {
        s.pk: StepRef(s.pk, s.number, s.title)
        for s in Step.objects.filter(deployment=deployment).order_by("phase__position", "position", "pk")
    }
    places = {("step", str(pk)): pk for pk in steps}
    for item_id, step_id in Item.objects.filter(deployment=deployment).values_list("pk", "step_id"):
        places[("item", str(item_id))] = step_id
    for object_type, object_id, step_id in hooks.event_places(deployment):
        if step_id in steps:
            places[(object_type, str(object_id))] = step_id
    return steps, places


# --- the filter -----------------------------------------------------------------------------


class EventLogFilter(forms.Form):
    """Actor, kind, step and a time range in the deployment's zone; all optional."""

    actor = forms.ChoiceField(required=False, label="Actor")
    kind = forms.ChoiceField(required=False, label="Kind")
    step = forms.ChoiceField(required=False, label="Step")
    since = forms.CharField(required=False, max_length=40, label="From")
    until = forms.CharField(required=False, max_length=40, label="To")
    page = forms.IntegerField(required=False, min_value=1, max_value=10**6)

    def __init__(self, data, *, deployment: Deployment, steps: dict[int, StepRef]):
        super().__init__(data)
        self.deployment = deployment
        self.zone = zone_of(deployment)
        log = Event.objects.filter(deployment=deployment)
        actors = sorted(set(log.values_list("actor_label", flat=True)), key=str.casefold)
        actions = sorted(set(log.values_list("action", flat=True)))
        families = sorted({action.split(".")[0] for action in actions if "." in action})
        self.fields["actor"].choices = [("", "Anyone"), *((a, a) for a in actors)]
        self.fields["kind"].choices = [
            ("", "Any kind"),
            *((f, f"{f}.* (all {f} events)") for f in families if f not in actions),
            *((a, a) for a in actions),
        ]
        self.fields["step"].choices = [("", "Any step"), *((str(pk), ref.label) for pk, ref in steps.items())]
        self.fields["actor"].error_messages["invalid_choice"] = "Nobody called “%(value)s” appears in this log."
        self.fields["kind"].error_messages["invalid_choice"] = "No events of kind “%(value)s” in this log."
        self.fields["step"].error_messages["invalid_choice"] = "This deployment has no step “%(value)s”."
        self.fields["page"].error_messages["invalid"] = "The page must be a whole number."
        zone = deployment.timezone_name
        for name in ("since", "until"):
            self.fields[name].label = f"{self.fields[name].label} ({zone})"
            self.fields[name].widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"})
        self.fields["since"].help_text = f"Events at or after this moment, in {zone}."
        self.fields["until"].help_text = f"Events up to the end of this second, in {zone}."

    def _moment(self, name: str) -> datetime | None:
        raw = (self.cleaned_data.get(name) or "").strip()
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise forms.ValidationError(
                f"“{raw}” is not a date and time ({TIME_FORMATS_HELP}, in {self.deployment.timezone_name})."
            ) from None
        if value.tzinfo is None:  # typed in the deployment's zone, as the label says
            value = value.replace(tzinfo=self.zone)
        return value

    def clean_since(self):
        return self._moment("since")

    def clean_until(self):
        return self._moment("until")

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            raise forms.ValidationError("“To” is before “From”: nothing can lie between them.")
        return data

    def as_query(self, *, page: int | None = None) -> str:
        """The filter as a querystring (valid values only), for export links and paging."""
        query = QueryDict(mutable=True)
        for name in ("actor", "kind", "step", "since", "until"):
            value = (self.data.get(name) or "").strip()
            if value:
                query[name] = value
        if page:
            query["page"] = page
        return query.urlencode()

    @property
    def is_filtered(self) -> bool:
        return any((self.data.get(name) or "").strip() for name in ("actor", "kind", "step", "since", "until"))

    @property
    def problems(self) -> list[str]:
        out = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else None
            out += [f"{label}: {e}" if label else str(e) for e in errors]
        return out


def filtered_events(deployment: Deployment, form: EventLogFilter, places: dict[tuple[str, str], int]):
    """The events a valid filter selects, oldest first."""
    data = form.cleaned_data
    log = Event.objects.filter(deployment=deployment).order_by("seq")
    if data.get("actor"):
        log = log.filter(actor_label=data["actor"])
    if kind := data.get("kind"):
        log = log.filter(Q(action=kind) | Q(action__startswith=f"{kind}."))
    if data.get("step"):
        step_id = int(data["step"])
        where = Q(pk__in=[])
        by_type: dict[str, list[str]] = {}
        for (object_type, object_id), placed in places.items():
            if placed == step_id:
                by_type.setdefault(object_type, []).append(object_id)
        for object_type, ids in by_type.items():
            where |= Q(object_type=object_type, object_id__in=ids)
        log = log.filter(where)
    if data.get("since"):
        log = log.filter(created_at__gte=data["since"])
    if data.get("until"):
        # The whole second typed is included: "to 22:05:30" keeps an event at 22:05:30.4.
        log = log.filter(created_at__lt=data["until"].replace(microsecond=0) + timedelta(seconds=1))
    return log


# --- one event in words ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    name: str
    before: str | None  # None: not recorded (the event recorded only what it set)
    after: str | None  # None: gone


@dataclass
class LogLine:
    event: Event
    local_time: str
    utc_time: str
    is_system: bool
    step: StepRef | None
    changes: list[Change]

    @property
    def step_label(self) -> str:
        return self.step.label if self.step else ""


_STATE_LABELS = dict(DeploymentState.choices)


def _show(name: str, value, zone) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        if name == "checked":
            return "ticked" if value else "not ticked"
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(name, v, zone) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_show(k, v, zone)}" for k, v in value.items()) or "—"
    if isinstance(value, str):
        if name == "state" and value in _STATE_LABELS:
            return _STATE_LABELS[value]
        if len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return value
            if moment.tzinfo is not None:
                return local_seconds(moment, zone)
        return value
    return str(value)


def changes_of(event: Event, zone) -> list[Change]:
    """What the event changed, field by field: ``before → after`` where both were recorded,
    only the new value where the event recorded no before (a creation, a reason given)."""
    before = event.before if isinstance(event.before, dict) else ({"value": event.before} if event.before is not None else {})
    after = event.after if isinstance(event.after, dict) else ({"value": event.after} if event.after is not None else {})
    names = list(before) + [name for name in after if name not in before]
    out = []
    for name in names:
        if name in before and name in after and before[name] == after[name]:
            continue  # unchanged: an item event records its whole state
        out.append(
            Change(
                name,
                _show(name, before[name], zone) if name in before else None,
                _show(name, after[name], zone) if name in after else None,
            )
        )
    return out


def log_lines(events, *, deployment: Deployment, steps: dict[int, StepRef], places) -> list[LogLine]:
    zone = zone_of(deployment)
    lines = []
    for event in events:
        step_id = places.get((event.object_type, event.object_id))
        lines.append(
            LogLine(
                event=event,
                local_time=local_seconds(event.created_at, zone),
                utc_time=utc_seconds(event.created_at),
                is_system=event.actor_id is None,
                step=steps.get(step_id) if step_id else None,
                changes=changes_of(event, zone),
            )
        )
    return lines


# --- exports ---------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "seq",
    "time_utc",
    "time_local",
    "actor",
    "actor_type",
    "kind",
    "step",
    "text",
    "changes",
    "before",
    "after",
    "hash",
    "prev_hash",
)


def export_record(line: LogLine) -> dict:
    event = line.event
    return {
        "seq": event.seq,
        "time_utc": line.utc_time,
        "time_local": line.local_time,
        "actor": event.actor_label,
        "actor_type": "system" if line.is_system else "person",
        "kind": event.action,
        "step": line.step_label,
        "text": event.summary,
        "changes": [{"field": c.name, "before": c.before, "after": c.after} for c in line.changes],
        "before": event.before,
        "after": event.after,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: JSON for structured values, and a leading
    apostrophe before anything it would run as a formula."""
    if value is None:
        text = ""
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_changes(changes: list[dict]) -> str:
    return "; ".join(
        f"{c['field']}: {c['before']} → {c['after']}" if c["before"] is not None else f"{c['field']}: {c['after']}"
        for c in changes
    )


class _Echo:
    def write(self, value):
        return value


def csv_lines(records):
    """Rows of the CSV export, one string each, header first (for a streaming response)."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(EXPORT_FIELDS)  # the BOM makes spreadsheets read UTF-8
    for record in records:
        row = dict(record, changes=csv_changes(record["changes"]))
        yield writer.writerow([csv_cell(row[name]) for name in EXPORT_FIELDS])
