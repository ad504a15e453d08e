"""The timeline picture stays readable whether a runbook spans two hours or T-72h…T+7d."""

import itertools
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from deployments.timeline import CHART_W, LABEL_W, offset_text, timeline_svg

T0 = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


class Step:
    def __init__(self, title, offset, duration, actual=None):
        self.title, self.offset, self.duration = title, offset, duration
        self.actual_start = T0 + timedelta(minutes=actual) if actual is not None else None
        self.actual_end = self.actual_start + timedelta(minutes=duration) if self.actual_start else None

    def planned_start(self, t0):
        return t0 + timedelta(minutes=self.offset)

    def planned_end(self, t0):
        return t0 + timedelta(minutes=self.offset + self.duration)


LONG = [
    Step("Announce", -72 * 60, 30, -72 * 60),
    Step("Freeze", -24 * 60, 60),
    Step("Backup", -60, 30, -55),
    Step("Migrate", 0, 30, 2),
    Step("Smoke", 30, 20),
    Step("Watch", 120, 240),
    Step("Close change", 7 * 24 * 60, 30),
]


def _labels(svg):
    return [(float(x), text) for x, text in re.findall(r'<text x="([\d.]+)" y="20" text-anchor="\w+" fill="#555">([^<]+)<', svg)]


def _bar_width(svg, title):
    return float(re.search(rf'width="([\d.]+)" height="6" fill="#bbb"><title>{title}: planned', svg).group(1))


def test_a_week_long_runbook_breaks_the_axis_and_keeps_the_night_readable():
    svg = str(timeline_svg(SimpleNamespace(planned_t0=T0, pk=1), LONG, T0 + timedelta(minutes=20)))
    labels = _labels(svg)
    xs = [x for x, _ in labels]
    assert len(labels) <= 14
    assert all(b - a >= 30 for a, b in itertools.pairwise(xs)), labels  # no smear of overlapping labels
    assert "T-0" in [t for _, t in labels]
    assert "≈" in svg and "broken" in svg  # the breaks are drawn and the title says so
    # Half an hour of migration is wide enough to see (on a linear T-72h…T+7d axis it is 1.5 px).
    assert _bar_width(svg, "Migrate") > 20
    assert all(LABEL_W <= x <= LABEL_W + CHART_W + 10 for x in xs)


def test_a_two_hour_runbook_keeps_a_plain_axis():
    steps = [Step("Backup", -30, 20), Step("Migrate", 0, 30), Step("Smoke", 40, 20)]
    svg = str(timeline_svg(SimpleNamespace(planned_t0=T0, pk=2), steps, T0))
    assert "≈" not in svg
    assert [t for _, t in _labels(svg)][:3] == ["T-30m", "T-20m", "T-10m"]


def test_offset_text():
    assert [offset_text(m) for m in (0, -4320, 90, -45, 1800)] == ["T-0", "T-3d", "T+1h30", "T-45m", "T+1d6h"]
