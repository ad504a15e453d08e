"""The T-clock: time relative to T-0, and how long a deployment took against its plan.

The war room's header, the TV and the phone view all show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


def human_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = int(abs(delta.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def t_label(moment, t0) -> str:
    seconds = int((moment - t0).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"T{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class Clock:
    """What the T-clock shows: counting (``running``) or stopped at the actual end."""

    t0: object
    running: bool
    stopped_label: str = ""  # the T-label at the end, for a finished deployment
    elapsed: str = ""  # time since the start (in progress) or how long it took (finished)
    planned: str = ""  # the planned duration, when the runbook or the window gives one
    over_plan: bool = False


def planned_span(deployment, steps) -> timedelta | None:
    """How long the deployment was planned to take: its maintenance window, else from T-0
    to the last planned step end at or after T-0."""
    if deployment.window_start and deployment.window_end:
        return deployment.window_end - deployment.window_start
    t0 = deployment.planned_t0
    ends = [s.planned_end(t0) for s in steps if s.offset_minutes is not None and s.offset_minutes >= 0]
    ends = [e for e in ends if e is not None and e > t0]
    return max(ends) - t0 if ends else None


def clock(deployment, steps, now) -> Clock:
    t0 = deployment.planned_t0
    plan = planned_span(deployment, steps)
    if deployment.is_finished:
        end = deployment.finished_at or now
        took = end - deployment.started_at if deployment.started_at else None
        return Clock(
            t0=t0,
            running=False,
            stopped_label=t_label(end, t0),
            elapsed=human_duration(took),
            planned=human_duration(plan) if plan else "",
            over_plan=bool(plan and took and took > plan),
        )
    elapsed = human_duration(now - deployment.started_at) if deployment.started_at else ""
    return Clock(t0=t0, running=True, elapsed=elapsed, planned=human_duration(plan) if plan else "")
