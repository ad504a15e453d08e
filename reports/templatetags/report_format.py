"""Filters the report templates use; the formatting itself lives in reports.formatting."""

from django import template

from reports import formatting

register = template.Library()


@register.filter
def local(value, zone):
    """An ISO timestamp from the record, in the deployment's zone: 2025-03-01 02:15 CET."""
    return formatting.local_time(value, zone) or "—"


@register.filter
def local_hm(value, zone):
    return formatting.local_time(value, zone, with_date=False) or "—"


@register.filter
def short(value, zone):
    """Table cells: 21 Nov 21:12 (the zone is stated once, above the table)."""
    return formatting.local_time(value, zone, short=True) or "—"


@register.filter
def clock(value, zone):
    """The start of a time range: 02:20 (the zone follows once, after the end)."""
    return formatting.local_time(value, zone, with_date=False, with_zone=False) or "—"


@register.filter
def minutes(value):
    return formatting.duration(value)


@register.filter
def offset(value):
    return formatting.offset(value)


@register.filter
def short_hash(value, length=12):
    return (value or "")[: int(length)]
