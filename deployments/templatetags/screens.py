"""Times in the deployment's own zone, for screens shared by a room (the TV) where the
browser's zone says nothing about the deployment."""

from types import SimpleNamespace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import template
from django.utils.html import format_html

register = template.Library()


def _zone(name: str):
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@register.simple_tag
def zoned(value, zone_name, fmt="time"):
    """A <time> in ``zone_name`` (not localised by the page script): "14:05" or "2026-11-29 14:05"."""
    if value is None:
        return "—"
    local = value.astimezone(_zone(zone_name))
    text = local.strftime("%H:%M") if fmt == "time" else local.strftime("%Y-%m-%d %H:%M")
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), text)


@register.filter
def zone_abbrev(zone_name, moment):
    """The zone's short name at ``moment`` (CET, CEST, UTC), for "times in …" lines."""
    if moment is None:
        return zone_name
    return moment.astimezone(_zone(zone_name)).tzname() or zone_name


@register.filter
def readings_grouped(events):
    """Recent events with each run of metric readings typed by hand folded into one line:
    a stage's readings are one story ("5 readings …, latest: …"), not five lines that push
    everything else out of the panel. The event log keeps every one."""
    out, run = [], []

    def flush():
        if len(run) == 1:
            out.append(run[0])
        elif run:
            newest, oldest = run[0], run[-1]  # events arrive newest first
            out.append(
                SimpleNamespace(
                    seq=f"{oldest.seq}–{newest.seq}",
                    created_at=newest.created_at,
                    actor_label=newest.actor_label,
                    summary=f"{len(run)} metric readings typed in; latest: {newest.summary}",
                )
            )
        run.clear()

    for event in events:
        if getattr(event, "action", "") == "rollout.reading":
            run.append(event)
            continue
        flush()
        out.append(event)
    flush()
    return out
