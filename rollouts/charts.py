"""Metric readings over time, with the threshold and the stage boundaries — as plain SVG.

The same picture goes to the war room and into the PDF report.
"""

from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from rollouts.models import ReadingStatus

W, H = 520, 150
LEFT, RIGHT, TOP, BOTTOM = 46, 10, 14, 24


def gate_chart(gate, readings) -> str:
    readings = [r for r in readings if r.gate_id == gate.pk]
    title = f"{gate.name} {gate.comparator} {gate.threshold:g}{gate.unit}"
    if not readings:
        return format_html('<p class="empty">{}: no readings yet.</p>', title)
    t0, t1 = readings[0].taken_at, readings[-1].taken_at
    span = max((t1 - t0).total_seconds(), 1.0)
    values = [r.value for r in readings if r.value is not None] + [gate.threshold]
    lo, hi = min(*values, 0.0), max(values) * 1.15 or 1.0

    def x(moment):
        return LEFT + (moment - t0).total_seconds() / span * (W - LEFT - RIGHT)

    def y(value):
        return TOP + (1 - (value - lo) / ((hi - lo) or 1)) * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'aria-label="{escape(title)}: {len(readings)} readings" font-family="sans-serif" font-size="10" class="metric-chart">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="#fafafa" stroke="#ddd"/>',
        f'<text x="{LEFT}" y="10" fill="#333">{escape(title)}</text>',
    ]
    # Stage boundaries: where the weight changes.
    previous = None
    for reading in readings:
        if reading.weight != previous:
            bx = x(reading.taken_at)
            out.append(
                f'<line x1="{bx:.1f}" y1="{TOP}" x2="{bx:.1f}" y2="{H - BOTTOM}" stroke="#90a4ae" stroke-dasharray="2 2"/>'
            )
            out.append(f'<text x="{bx + 2:.1f}" y="{H - BOTTOM + 12}" fill="#455a64">{reading.weight} %</text>')
            previous = reading.weight
    ty = y(gate.threshold)
    out.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{W - RIGHT}" y2="{ty:.1f}" stroke="#c62828" stroke-dasharray="5 3"/>')
    out.append(f'<text x="{LEFT - 4}" y="{ty + 3:.1f}" text-anchor="end" fill="#c62828">{gate.threshold:g}</text>')
    out.append(f'<text x="{LEFT - 4}" y="{H - BOTTOM:.1f}" text-anchor="end" fill="#777">{lo:g}</text>')
    points = [(x(r.taken_at), y(r.value)) for r in readings if r.value is not None]
    if len(points) > 1:
        out.append(
            '<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="'
            + " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            + '"/>'
        )
    for reading in readings:
        if reading.value is None:
            out.append(
                f'<text x="{x(reading.taken_at):.1f}" y="{H - BOTTOM - 3}" fill="#9e9e9e" text-anchor="middle">?'
                f"<title>inconclusive: {escape(reading.reason)}</title></text>"
            )
            continue
        colour = "#2e7d32" if reading.status == ReadingStatus.PASS else "#c62828"
        out.append(
            f'<circle cx="{x(reading.taken_at):.1f}" cy="{y(reading.value):.1f}" r="2.5" fill="{colour}">'
            f"<title>{reading.value:g}{escape(gate.unit)} at {reading.taken_at:%H:%M:%S} UTC</title></circle>"
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text in it went through escape())


# --- the TV's sparklines ---------------------------------------------------------------

SPARK_W, SPARK_H = 300, 64


def sparkline(gate, readings) -> str:
    """A metric's recent readings as a small SVG line, the threshold dashed; dark-screen colours."""
    points = [r for r in readings if r.gate_id == gate.pk and r.value is not None]
    label = f"{gate.name}: {len(points)} readings, threshold {gate.comparator} {gate.threshold:g}{gate.unit}"
    if not points:
        return ""
    t0, t1 = points[0].taken_at, points[-1].taken_at
    span = (t1 - t0).total_seconds() or 1.0
    values = [r.value for r in points] + [gate.threshold]
    lo, hi = min(*values, 0.0), max(values) * 1.15 or 1.0

    def x(moment):
        return 2 + (moment - t0).total_seconds() / span * (SPARK_W - 4)

    def y(value):
        return 4 + (1 - (value - lo) / ((hi - lo) or 1)) * (SPARK_H - 8)

    line = " ".join(f"{x(r.taken_at):.1f},{y(r.value):.1f}" for r in points)
    last = points[-1]
    colour = "#69f0ae" if last.status == "pass" else "#ff5252"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SPARK_W} {SPARK_H}" preserveAspectRatio="none" '
        f'class="spark" role="img" aria-label="{escape(label)}">',
        f'<line x1="0" x2="{SPARK_W}" y1="{y(gate.threshold):.1f}" y2="{y(gate.threshold):.1f}" stroke="#ff5252" '
        'stroke-width="2" stroke-dasharray="6 4" vector-effect="non-scaling-stroke"/>',
    ]
    if len(points) > 1:
        out.append(
            f'<polyline fill="none" stroke="#4fc3f7" stroke-width="3" vector-effect="non-scaling-stroke" points="{line}"/>'
        )
    out.append(f'<circle cx="{x(last.taken_at):.1f}" cy="{y(last.value):.1f}" r="4" fill="{colour}"/>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (the only text, the label, went through escape())
