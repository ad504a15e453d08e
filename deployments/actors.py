"""Who acts when no person does: a pipeline with a token, or a part of Warroom itself.

A system actor is not a person with every right: ``deployments.permissions`` decides
what each kind may do, and the services ask there like they do for people. The
``label`` is what the event log and the checklist show ("Pipeline “GitLab”").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SystemKind(StrEnum):
    PIPELINE = "pipeline"  # a CI job holding the deployment's API token
    TASK_RUN = "task_run"  # an automated step that finished on a worker
    GATE_DECISION = "gate_decision"  # a gate's rule was met (or the lead closed it)
    APPROVALS = "approvals"  # a required approval was given or withdrawn
    INCIDENT = "incident"  # a SEV1 opens its rollback vote
    ROLLOUT = "rollout"  # the rollout controller aborted and pauses the deployment
    WARROOM = "warroom"  # the deployment itself, e.g. closing its gates when it finishes


@dataclass(frozen=True)
class SystemActor:
    kind: SystemKind
    label: str
    # A task run may tick the lines of its own step, and only those.
    step_id: int | None = None

    # People have these too, so code that records "who" can treat both alike.
    pk = None
    is_authenticated = False
    is_active = False

    def __str__(self):
        return self.label


def pipeline(token_name: str) -> SystemActor:
    return SystemActor(SystemKind.PIPELINE, f"Pipeline “{token_name}”")


def task_run(run_id: int, step_id: int) -> SystemActor:
    return SystemActor(SystemKind.TASK_RUN, f"Task run #{run_id}", step_id=step_id)


def incident(label: str) -> SystemActor:
    return SystemActor(SystemKind.INCIDENT, label)


GATE_DECISION = SystemActor(SystemKind.GATE_DECISION, "Gate decision")
APPROVALS = SystemActor(SystemKind.APPROVALS, "Approvals")
ROLLOUT_CONTROLLER = SystemActor(SystemKind.ROLLOUT, "Rollout controller")
WARROOM = SystemActor(SystemKind.WARROOM, "Warroom")


def is_system(actor) -> bool:
    return isinstance(actor, SystemActor)
