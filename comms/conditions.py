"""When a scheduled message may go out: the deployment's state, and one named condition.

A template lists the deployment states it fits (``send_states``) and one condition from a
closed list (``SendCondition``). A due message whose state or condition does not hold is
*held*: beat looks again each tick and sends it when both hold, or cancels it once the
deployment has finished in a state the template does not fit (it can never hold then).

Conditions about other apps' records (incidents) are checked by what those apps register
here in their ``AppConfig.ready()`` — comms imports nothing of theirs::

    conditions.provide(SendCondition.NO_OPEN_SEV1, lambda deployment: "INC-3 (SEV1) is open" or None)

A check answers None when the condition holds, else what stands in the way, in words.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from comms.models import UNFINISHED_STATES, SendCondition, TemplateKind
from deployments.models import FINISHED_STATES, Deployment, DeploymentState

# The defaults a new template of each kind gets (and the migration gave existing ones).
DEFAULTS_BY_KIND: dict[str, tuple[list[str], str]] = {
    TemplateKind.MAINTENANCE_NOTICE: (UNFINISHED_STATES, SendCondition.ALWAYS),
    TemplateKind.STARTING: ([DeploymentState.IN_PROGRESS, DeploymentState.PAUSED], SendCondition.ALWAYS),
    TemplateKind.GO_LIVE: ([DeploymentState.COMPLETED], SendCondition.NO_OPEN_SEV1),
    TemplateKind.ROLLBACK: ([DeploymentState.ROLLED_BACK], SendCondition.ALWAYS),
    TemplateKind.DELAY: ([DeploymentState.PAUSED], SendCondition.PAST_WINDOW),
    TemplateKind.INCIDENT_ALERT: (UNFINISHED_STATES, SendCondition.ALWAYS),
    TemplateKind.OTHER: (UNFINISHED_STATES, SendCondition.ALWAYS),
}

# What the condition's "sends when …" says once it holds.
_WHEN_HOLDS = {
    SendCondition.NO_OPEN_SEV1: "no SEV1 incident is open",
    SendCondition.NO_OPEN_INCIDENT: "no incident is open",
    SendCondition.PAST_WINDOW: "the window's planned end has passed",
}

_checks: dict[str, Callable[[Deployment], str | None]] = {}


def provide(condition: str, check: Callable[[Deployment], str | None]) -> None:
    """Register who checks ``condition`` (an app that owns the records it is about)."""
    _checks[condition] = check


def defaults_for(kind: str) -> tuple[list[str], str]:
    states, condition = DEFAULTS_BY_KIND.get(kind, DEFAULTS_BY_KIND[TemplateKind.OTHER])
    return [str(s) for s in states], str(condition)


def expected_end(deployment: Deployment) -> datetime | None:
    """When the work is planned to end: the window's end, else the last step's planned end."""
    if deployment.window_end:
        return deployment.window_end
    ends = [step.planned_end(deployment.planned_t0) for step in deployment.steps.all()]
    return max((e for e in ends if e is not None), default=None)


def local_time(value: datetime, deployment: Deployment) -> str:
    """A time as people on the night read it: the deployment's zone, named."""
    try:
        zone = zoneinfo.ZoneInfo(deployment.timezone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _states_in_words(states) -> str:
    labels = [DeploymentState(s).label.lower() for s in DeploymentState if s in set(states)]
    if len(labels) <= 1:
        return "".join(labels) or "never (no state chosen)"
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def _condition_blocker(condition: str, deployment: Deployment, now: datetime) -> str | None:
    if condition == SendCondition.ALWAYS:
        return None
    if condition == SendCondition.PAST_WINDOW:
        end = expected_end(deployment)
        if end is None:
            return "the deployment has no planned end"
        return None if now >= end else f"the window runs until {local_time(end, deployment)}"
    check = _checks.get(condition)
    if check is None:  # fail closed: a "complete" message never goes out on an unchecked condition
        return f"nothing can check “{SendCondition(condition).label}” here"
    return check(deployment)


def hold_reason(template, deployment: Deployment, now: datetime | None = None) -> str | None:
    """None when a due send of ``template`` may go out now; else why not, and when it will."""
    now = now or timezone.now()
    states = template.send_states
    if deployment.state not in states:
        return f"the deployment is {DeploymentState(deployment.state).label.lower()}; sends when it is {_states_in_words(states)}"
    blocker = _condition_blocker(template.send_condition, deployment, now)
    if blocker:
        return f"{blocker}; sends when {_WHEN_HOLDS.get(template.send_condition, 'that changes')}"
    return None


def never_holds(template, deployment: Deployment) -> str | None:
    """Why a send of ``template`` can never go out any more (the deployment finished in a state it
    does not fit), or None."""
    if deployment.state in FINISHED_STATES and deployment.state not in template.send_states:
        return (
            f"the deployment was {DeploymentState(deployment.state).label.lower()}; "
            f"“{template.name}” goes out only when it is {_states_in_words(template.send_states)}"
        )
    return None


def describe(template) -> str:
    """The template's rule in words, for the page: "when completed, and no open SEV1 incident"."""
    text = f"when the deployment is {_states_in_words(template.send_states)}"
    if template.send_condition != SendCondition.ALWAYS:
        label = SendCondition(template.send_condition).label
        text += f", and {label[0].lower()}{label[1:]}"
    return text
