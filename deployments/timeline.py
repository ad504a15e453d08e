"""Planned vs actual per step, drawn as an SVG on the server.

The same picture goes to the war room and into the PDF report, so it is plain SVG
with no script and no external styles.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils.html import escape
from django.utils.safestring import mark_safe

ROW = 18
LABEL_W = 260
CHART_W = 560
PAD_TOP = 24


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def timeline_svg(deployment, steps, now) -> str:
    t0 = deployment.planned_t0
    rows = []
    for step in steps:
        planned_start, planned_end = step.planned_start(t0), step.planned_end(t0)
        if planned_start is None and step.actual_start is None:
            continue
        rows.append(
            (step, planned_start, planned_end, step.actual_start, step.actual_end or (now if step.actual_start else None))
        )
    if not rows:
        return mark_safe(
            '<p class="empty">No step has a planned time or has started yet: '
            "the timeline appears once the runbook gives offsets or work begins.</p>"
        )
    points = [t for row in rows for t in row[1:] if t is not None] + [t0]
    lo = min(_minutes(p - t0) for p in points)
    hi = max(_minutes(p - t0) for p in points)
    if hi - lo < 30:
        hi = lo + 30
    span = hi - lo

    def x(moment) -> float:
        return LABEL_W + (_minutes(moment - t0) - lo) / span * CHART_W

    title_id = f"timeline-title-{getattr(deployment, 'pk', None) or 'report'}"  # unique when several are on a page
    height = PAD_TOP + ROW * len(rows) + 10
    width = LABEL_W + CHART_W + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="{title_id}" class="timeline-svg" font-family="sans-serif" font-size="11">',
        f'<title id="{title_id}">Planned (grey) vs actual (blue; red when late) for {len(rows)} steps</title>',
    ]
    # Hour ticks relative to T-0.
    first_tick = int(lo // 60) * 60
    for minute in range(first_tick, int(hi) + 61, 60):
        if lo <= minute <= hi:
            tx = LABEL_W + (minute - lo) / span * CHART_W
            label = "T-0" if minute == 0 else f"T{'+' if minute > 0 else '-'}{abs(minute) // 60}h"
            out.append(f'<line x1="{tx:.1f}" y1="{PAD_TOP - 6}" x2="{tx:.1f}" y2="{height}" stroke="#ddd"/>')
            out.append(f'<text x="{tx:.1f}" y="{PAD_TOP - 10}" text-anchor="middle" fill="#555">{label}</text>')
    for index, (step, p_start, p_end, a_start, a_end) in enumerate(rows):
        y = PAD_TOP + index * ROW
        # 260 px of label holds about 40 characters: longer titles are shortened, the full one is the tooltip.
        title = escape(step.title if len(step.title) <= 40 else step.title[:39] + "…")
        out.append(f'<text x="{LABEL_W - 6}" y="{y + 12}" text-anchor="end" fill="#222">{title}</text>')
        if p_start is not None:
            end = p_end or p_start + timedelta(minutes=1)
            out.append(
                f'<rect x="{x(p_start):.1f}" y="{y + 2}" width="{max(x(end) - x(p_start), 2):.1f}" height="6" '
                f'fill="#bbb"><title>{title}: planned</title></rect>'
            )
        if a_start is not None:
            late = p_end is not None and a_end is not None and a_end > p_end
            colour = "#c62828" if late else "#1565c0"
            out.append(
                f'<rect x="{x(a_start):.1f}" y="{y + 9}" width="{max(x(a_end) - x(a_start), 2):.1f}" height="6" '
                f'fill="{colour}"><title>{title}: actual{" (late)" if late else ""}</title></rect>'
            )
    if lo <= _minutes(now - t0) <= hi:
        nx = x(now)
        out.append(
            f'<line x1="{nx:.1f}" y1="{PAD_TOP - 6}" x2="{nx:.1f}" y2="{height}" stroke="#e65100" stroke-dasharray="3 2"/>'
        )
        out.append(f'<text x="{nx + 3:.1f}" y="{height - 2}" fill="#e65100">now</text>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text in it went through escape())
