"""Filters the report templates use; the formatting itself lives in reports.formatting."""

import re

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
    return formatting.local_time(value, zone, short=True, with_zone=False) or "—"


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


_LONG_TOKEN = re.compile(r"\S{25,}")
_SOFT_AFTER = re.compile(r"([/_\-.:=,])")


def _soften(match) -> str:
    token = _SOFT_AFTER.sub("\\1\u200b", match.group(0))
    # Hashes and ids have no punctuation at all: a break opportunity every 16 characters.
    return "\u200b".join(re.sub(r"(\S{16})(?=\S)", "\\1\u200b", part) for part in token.split("\u200b"))


@register.filter
def breakable(value):
    """Long paths, hashes and log tokens get break opportunities (zero-width spaces) after
    separators and every 16 characters, so a table cell wraps them instead of running past
    the margin, while ordinary words still never break in the middle."""
    if not isinstance(value, str):
        return value
    return _LONG_TOKEN.sub(_soften, value)
