"""Several processes hammer one deployment at once: votes, ticks, field writes, state changes.

Every service function takes its locks in the one order written in deployments/locks.py,
so none of them can wait for another in a circle: no deadlock, no lost or doubled change,
and the event log's hash chain still verifies.
"""

import json
import subprocess
import sys

import pytest

from approvals import services as approvals
from approvals.models import GateRule
from deployments import services
from deployments.events import verify_chain
from deployments.models import DeploymentRole, DeploymentState, Event, Item
from tests.conftest import BASE_DIR

pytestmark = pytest.mark.django_db(transaction=True)

OPS = 30


def test_votes_ticks_writes_and_state_changes_together(crew, process_env):
    deployment, people = crew
    lead = people["lead"]
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        services.change_state(deployment.pk, lead, state)
    roles = {r.name: r.pk for r in DeploymentRole.objects.filter(deployment=deployment)}
    # The Product Owner decides and never votes here, so the gate stays open all along.
    gate = approvals.add_gate(
        deployment,
        lead,
        title="Hammer gate",
        voter_role_ids=[roles["QA Lead"], roles["DevOps Engineer"], roles["DBA"], roles["Product Owner"]],
        rule=GateRule.DECIDER,
        decider_role_id=roles["Product Owner"],
    )
    step1 = deployment.steps.get(title="Step 1")  # DevOps Engineer's
    step2 = deployment.steps.get(title="Step 2")  # QA Lead's
    devops_items = list(Item.objects.filter(step=step1, kind="check").values_list("pk", flat=True))
    qa_items = list(Item.objects.filter(step=step2, kind="check").values_list("pk", flat=True))
    fields = [
        Item.objects.create(deployment=deployment, step=step2, kind="field", text=f"Reading {i}", position=50 + i)
        for i in range(2)
    ]
    specs = [
        {"kind": "ticker", "user": "devops", "items": devops_items},
        {"kind": "ticker", "user": "qa", "items": qa_items},
        {"kind": "writer", "user": "qa", "items": [fields[0].pk]},
        {"kind": "writer", "user": "lead", "items": [fields[1].pk]},
        {"kind": "voter", "user": "dba", "gate": gate.pk},
        {"kind": "voter", "user": "devops", "gate": gate.pk},
        {"kind": "voter", "user": "qa", "gate": gate.pk},
        {"kind": "lead", "user": "lead"},
    ]
    events_before = Event.objects.filter(deployment=deployment).count()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrency.hammer", json.dumps({**spec, "deployment": deployment.pk, "ops": OPS})],
            cwd=BASE_DIR,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert [r["deadlocks"] for r in results] == [0] * len(specs), results
    assert all(not [e for e in r["errors"] if not e.startswith("refused")] for r in results), results
    # Nothing a rule allows is refused: ticks, writes and votes all go through; only the
    # lead's state changes can be refused (a pause while paused), and they are not counted.
    for r in results:
        if r["kind"] != "lead":
            assert (r["done"], r["refused"]) == (OPS, 0), r
    # No lost and no doubled change: one event per change that went through.
    events = Event.objects.filter(deployment=deployment)
    ticks = events.filter(action__in=["item.ticked", "item.unticked"]).count()
    writes = events.filter(action="field.set").count()
    votes = events.filter(action="vote.cast").count()
    states = events.filter(action="deployment.state", seq__gt=events_before).count()
    assert ticks == 2 * OPS and writes == 2 * OPS and votes == 3 * OPS, (ticks, writes, votes)
    assert states == next(r["done"] for r in results if r["kind"] == "lead")
    for field, who in zip(fields, ("qa", "lead"), strict=True):
        field.refresh_from_db()
        assert field.value == f"{who}-{OPS - 1}"  # the last write of each writer stands
    assert verify_chain(deployment.pk).ok
