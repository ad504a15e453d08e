"""Planned vs actual per step, drawn as an SVG on the server.

The same picture goes to the war room and into the PDF report, so it is plain SVG
with no script and no external styles.

A runbook may span two hours or T-72h…T+7d with most of the work near T-0. A linear axis
over such a span squeezes the night's steps into a few pixels and smears the hour labels
into each other, so the axis is **broken**: stretches where nothing is planned or happening
(the widest ones longer than ``GAP_MINUTES``, as many as the width holds) are cut out and drawn as a narrow
break labelled with the time left out; each remaining stretch gets ticks spaced for its
own scale (15 min … 1 day), never closer than ``MIN_TICK_PX``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

from django.utils.html import escape
from django.utils.safestring import mark_safe

ROW = 18
LABEL_W = 260
CHART_W = 560
PAD_TOP = 30
BREAK_W = 26
MIN_SEGMENT_W = 70
MIN_TICK_PX = 56
GAP_MINUTES = 180
MAX_BREAKS = (CHART_W + BREAK_W) // (MIN_SEGMENT_W + BREAK_W) - 1
TICK_STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080]


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def offset_text(minutes: float) -> str:
    """A T-offset as people say it: T-0, T-72h, T+1d6h, T+1h30, T-45m."""
    minutes = round(minutes)
    if minutes == 0:
        return "T-0"
    sign = "+" if minutes > 0 else "-"
    rest = abs(minutes)
    days, rest = divmod(rest, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"T{sign}{days}d" + (f"{hours}h" if hours else "")
    if hours:
        return f"T{sign}{hours}h" + (f"{mins:02d}" if mins else "")
    return f"T{sign}{mins}m"


def gap_text(minutes: float) -> str:
    """A left-out stretch, short enough for a break a few pixels wide: 3d, 2d4h, 5h."""
    minutes = round(minutes)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    return f"{hours}h" if hours else f"{mins}m"


@dataclass
class Segment:
    lo: float  # minutes from T-0
    hi: float
    x: float = 0.0  # where it starts on the chart
    w: float = 0.0

    def to_x(self, minute: float) -> float:
        return self.x + (minute - self.lo) / ((self.hi - self.lo) or 1) * self.w


class Axis:
    """Minutes from T-0 → x, linear within each segment, with breaks between segments."""

    def __init__(self, intervals: list[tuple[float, float]]):
        merged: list[list[float]] = []
        for a, b in sorted((min(a, b), max(a, b)) for a, b in intervals):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        # Cut the widest empty stretches (longer than GAP_MINUTES), as many as the width allows.
        gaps = sorted(
            ((merged[i + 1][0] - merged[i][1], i) for i in range(len(merged) - 1)),
            reverse=True,
        )
        cut = {i for gap, i in gaps[:MAX_BREAKS] if gap > GAP_MINUTES}
        clusters: list[list[float]] = []
        for index, (a, b) in enumerate(merged):
            if clusters and index - 1 not in cut:
                clusters[-1][1] = max(clusters[-1][1], b)
            else:
                clusters.append([a, b])
        segments = []
        for first, last in clusters:
            pad = max((last - first) * 0.04, 5)
            lo, hi = first - pad, last + pad
            if hi - lo < 30:  # a lone moment still gets half an hour of room
                middle = (lo + hi) / 2
                lo, hi = middle - 15, middle + 15
            segments.append(Segment(lo, hi))
        available = CHART_W - BREAK_W * (len(segments) - 1)
        total = sum(s.hi - s.lo for s in segments)
        widths = [max(MIN_SEGMENT_W, available * (s.hi - s.lo) / total) for s in segments]
        scale = available / sum(widths)
        x = float(LABEL_W)
        for segment, width in zip(segments, widths, strict=True):
            segment.x, segment.w = x, width * scale
            x += segment.w + BREAK_W
        self.segments = segments

    @property
    def broken(self) -> bool:
        return len(self.segments) > 1

    def x(self, minute: float) -> float:
        last = self.segments[-1]
        minute = min(minute, last.hi)
        for index, segment in enumerate(self.segments):
            if minute <= segment.hi:
                if minute < segment.lo:  # before the first segment, or inside a break (its middle)
                    return segment.x - BREAK_W / 2 if index else segment.x
                return segment.to_x(minute)
        return last.x + last.w  # pragma: no cover

    def contains(self, minute: float) -> bool:
        return any(s.lo <= minute <= s.hi for s in self.segments)

    def ticks(self):
        """(minute, x) of the axis labels: per segment, the finest step that keeps them apart."""
        for segment in self.segments:
            per_minute = segment.w / ((segment.hi - segment.lo) or 1)
            step = next((s for s in TICK_STEPS if s * per_minute >= MIN_TICK_PX), TICK_STEPS[-1])
            first = int(-(-segment.lo // step)) * step
            minute = first
            while minute <= segment.hi:
                yield minute, segment.to_x(minute)
                minute += step

    def breaks(self):
        """(x of the break's middle, minutes left out) between consecutive segments."""
        for before, after in itertools.pairwise(self.segments):
            yield before.x + before.w + BREAK_W / 2, after.lo - before.hi


def _rows(steps, t0, now):
    rows = []
    for step in steps:
        planned_start, planned_end = step.planned_start(t0), step.planned_end(t0)
        if planned_start is None and step.actual_start is None:
            continue
        rows.append(
            (step, planned_start, planned_end, step.actual_start, step.actual_end or (now if step.actual_start else None))
        )
    return rows


def _intervals(rows, t0, now):
    intervals = [(0.0, 0.0)]
    for _, p_start, p_end, a_start, a_end in rows:
        if p_start is not None:
            intervals.append((_minutes(p_start - t0), _minutes((p_end or p_start) - t0)))
        if a_start is not None:
            intervals.append((_minutes(a_start - t0), _minutes((a_end or a_start) - t0)))
    return intervals


def timeline_svg(deployment, steps, now, *, axis_steps=None) -> str:
    """The picture; ``axis_steps`` (default: ``steps``) sets the axis, so pictures of a long
    runbook cut into pages share one scale."""
    t0 = deployment.planned_t0
    rows = _rows(steps, t0, now)
    if not rows:
        return mark_safe(
            '<p class="empty">No step has a planned time or has started yet: '
            "the timeline appears once the runbook gives offsets or work begins.</p>"
        )
    axis_rows = rows if axis_steps is None else (_rows(axis_steps, t0, now) or rows)
    axis = Axis(_intervals(axis_rows, t0, now))

    def x(moment) -> float:
        return axis.x(_minutes(moment - t0))

    title_id = f"timeline-title-{getattr(deployment, 'pk', None) or 'report'}"  # unique when several are on a page
    height = PAD_TOP + ROW * len(rows) + 10
    width = LABEL_W + CHART_W + 10
    summary = f"Planned (grey) vs actual (blue; red when late) for {len(rows)} steps"
    if axis.broken:
        summary += "; the time axis is broken where nothing was planned or done (≈ marks the time left out)"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="{title_id}" class="timeline-svg" font-family="sans-serif" font-size="11">',
        f'<title id="{title_id}">{escape(summary)}</title>',
    ]
    for minute, tx in axis.ticks():
        colour = "#999" if minute == 0 else "#ddd"
        out.append(f'<line x1="{tx:.1f}" y1="{PAD_TOP - 6}" x2="{tx:.1f}" y2="{height}" stroke="{colour}"/>')
        anchor = "end" if tx > LABEL_W + CHART_W - 16 else "middle"  # the last label stays inside the picture
        out.append(f'<text x="{tx:.1f}" y="{PAD_TOP - 10}" text-anchor="{anchor}" fill="#555">{offset_text(minute)}</text>')
    for bx, left_out in axis.breaks():
        out.append(
            f'<rect x="{bx - BREAK_W / 2 + 3:.1f}" y="{PAD_TOP - 6}" width="{BREAK_W - 6}" height="{height - PAD_TOP + 6}" '
            f'fill="#f3f3f3"/>'
        )
        out.append(f'<path d="M{bx - 5:.1f},{PAD_TOP - 2} l4,-6 l2,12 l4,-6" fill="none" stroke="#777" stroke-width="1.2"/>')
        out.append(
            f'<text x="{bx:.1f}" y="{height - 2}" text-anchor="middle" fill="#777" font-size="9">'
            f"≈{escape(gap_text(left_out))}<title>{escape(gap_text(left_out))} with nothing planned, left out</title></text>"
        )
    for index, (step, p_start, p_end, a_start, a_end) in enumerate(rows):
        y = PAD_TOP + index * ROW
        # 260 px of label holds about 40 characters: longer titles are shortened, the full one is the tooltip.
        title = escape(step.title if len(step.title) <= 40 else step.title[:39] + "…")
        out.append(f'<text x="{LABEL_W - 6}" y="{y + 12}" text-anchor="end" fill="#222">{title}</text>')
        if p_start is not None:
            end = p_end or p_start + timedelta(minutes=1)
            out.append(
                f'<rect x="{x(p_start):.1f}" y="{y + 2}" width="{max(x(end) - x(p_start), 2):.1f}" height="6" '
                f'fill="#bbb"><title>{title}: planned {offset_text(_minutes(p_start - t0))}</title></rect>'
            )
        if a_start is not None:
            late = p_end is not None and a_end is not None and a_end > p_end
            colour = "#c62828" if late else "#1565c0"
            out.append(
                f'<rect x="{x(a_start):.1f}" y="{y + 9}" width="{max(x(a_end) - x(a_start), 2):.1f}" height="6" '
                f'fill="{colour}"><title>{title}: actual{" (late)" if late else ""}</title></rect>'
            )
    if axis.contains(_minutes(now - t0)):
        nx = x(now)
        out.append(
            f'<line x1="{nx:.1f}" y1="{PAD_TOP - 6}" x2="{nx:.1f}" y2="{height}" stroke="#e65100" stroke-dasharray="3 2"/>'
        )
        out.append(f'<text x="{nx + 3:.1f}" y="{height - 2}" fill="#e65100">now</text>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text in it went through escape())
