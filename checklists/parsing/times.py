"""Durations, T-offsets and clock times as written in runbooks, in minutes."""

from __future__ import annotations

import re

_UNIT_MINUTES = {"d": 1440, "h": 60, "m": 1}


_DURATION = r"(\d+(?:\.\d+)?)[ \t]*(?:(?:-|–|—|to)[ \t]*(\d+(?:\.\d+)?)[ \t]*)?(days?|d|hours?|hrs?|h|minutes?|mins?|m)\b"


_DURATION_RE = re.compile(_DURATION, re.IGNORECASE)


_CANONICAL_DURATION_RE = re.compile(rf"[ \t]*{_DURATION}[ \t]*\.?", re.IGNORECASE)


_T_UNIT = r"(?:days?|d|hours?|hrs?|h|minutes?|mins?|m)"


# "T-24h", "T+5", "T+1h30m": every amount but the last needs a unit (a bare last one is minutes).
_T_OFFSET_RE = re.compile(
    rf"T[ \t]*(?:([+\-−–])[ \t]*((?:\d+(?:\.\d+)?[ \t]*{_T_UNIT}[ \t]*)*\d+(?:\.\d+)?[ \t]*{_T_UNIT}?))?", re.IGNORECASE
)


_T_PART_RE = re.compile(rf"(\d+(?:\.\d+)?)[ \t]*({_T_UNIT})?", re.IGNORECASE)


_CLOCK = r"(\d{1,2})(?::(\d{2}))?[ \t]*(?:([AaPp])\.?[Mm]\.?)?"


_CLOCK_RE = re.compile(rf"{_CLOCK}(?:[ \t]+[A-Z]{{2,5}})?")


_CLOCK_PREFIX_RE = re.compile(_CLOCK)


_PLAIN_TIME_LEAD_RE = re.compile(
    r"(?P<label>T[ \t]*[+\-−–][ \t]*\d+(?:\.\d+)?[ \t]*[A-Za-z]*|T[ \t]*0|\d{1,2}:\d{2}(?:[ \t]*[AaPp]\.?[Mm]\.?)?"
    r"(?:[ \t]+[A-Z]{2,5})?)[ \t]*(?::|-|–|—)[ \t]+(?P<rest>.+)"
)


_BOLD_LEAD_RE = re.compile(r"\*\*(?P<label>[^*]+?)\*\*[ \t]*:?[ \t]*(?P<rest>.*)")


def _parse_duration(text: str) -> tuple[int, int] | None:
    """ "10-15 minutes" -> (10, 15); "2-3 hours" -> (120, 180); "15 min" -> (15, 15)."""
    match = _DURATION_RE.search(text)
    if not match:
        return None
    unit = _UNIT_MINUTES[match.group(3)[0].lower()]
    low = round(float(match.group(1)) * unit)
    high = round(float(match.group(2)) * unit) if match.group(2) else low
    return (low, high) if low <= high else (high, low)


def _t_offset(label: str) -> int | None:
    """ "T-24h" -> -1440, "T+5" -> 5 (bare numbers are minutes), "T+1h30m" -> 90, "T-0" -> 0."""
    match = _T_OFFSET_RE.fullmatch(label.strip())
    if not match:
        return None
    if match.group(1) is None:
        return 0
    minutes = 0
    for amount, unit in _T_PART_RE.findall(match.group(2)):
        # Whole numbers stay exact, however large: a rendered offset must read back to the same minutes.
        number = int(amount) if amount.isdigit() else float(amount)
        minutes += number * _UNIT_MINUTES[(unit or "m")[0].lower()]
    minutes = round(minutes)
    return -minutes if match.group(1) != "+" else minutes


def _planned_start(value: str) -> tuple[int, bool] | None:
    """ "T-1h" -> (-60, True); "T-1h (after the backup)" -> (-60, False): the offset, and whether that is all it says.

    None when the value does not start with a signed T-offset (a clock time, "Tuesday").
    """
    value = value.strip()
    offset = _t_offset(value)
    if offset is not None:
        return offset, True
    match = _T_OFFSET_RE.match(value)
    if match is None or match.group(1) is None:
        return None
    end = match.end()
    if end < len(value) and value[end - 1].isalnum() and value[end].isalnum():  # "T+5m30s", "T+5min2"
        return None
    offset = _t_offset(match.group())
    return None if offset is None else (offset, False)


def _clock_minutes(text: str, *, prefix: bool = False) -> int | None:
    """Minutes after midnight of "09:30 AM", "12:00 PM EST" or "14:30"; None if it is not a clock time."""
    match = (_CLOCK_PREFIX_RE.match if prefix else _CLOCK_RE.fullmatch)(text.strip())
    if not match or (match.group(2) is None and match.group(3) is None):
        return None  # a bare number is not a time
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").lower()
    if minute > 59 or hour > (12 if half else 23) or (half and hour == 0):
        return None
    if half:
        hour = hour % 12 + (12 if half == "p" else 0)
    return hour * 60 + minute


def _is_time_label(label: str) -> bool:
    return _t_offset(label) is not None or _clock_minutes(label) is not None


def _label_offset(label: str, start_minutes: int | None) -> int | None:
    offset = _t_offset(label)
    if offset is not None:
        return offset
    clock = _clock_minutes(label)
    if clock is None or start_minutes is None:
        return None
    delta = clock - start_minutes
    if delta < -720:  # past midnight
        delta += 1440
    elif delta > 720:
        delta -= 1440
    return delta
