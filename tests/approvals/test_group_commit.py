"""Votes that arrive together are applied together, and each still counts as if alone.

The deployment's row is held locked from another connection while ballots queue up, so the
first ballot's thread leads a group of one (it waits on the lock) and everything arriving
meanwhile forms the next group: the group is made for certain, not by luck of timing.
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from approvals import services
from approvals.models import Decision, Gate, GateRule, GateState, Vote
from deployments import services as deployment_services
from deployments.events import verify_chain
from deployments.locks import lock_deployment
from deployments.models import DeploymentRole, Event
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _queued(gate_id: int) -> int:
    return services._ballots.queued(gate_id)


def _leading_alone(gate_id: int) -> bool:
    """The first ballot's thread leads (holds the gate's leader lock) and took itself off the queue."""
    return services._ballots.leading(gate_id) and _queued(gate_id) == 0


def _vote_while_locked(deployment, gate, ballots):
    """Hold the deployment's lock, let every ballot queue, release: one outcome per ballot."""
    outcomes = [None] * len(ballots)
    locked, release = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic():
            lock_deployment(deployment.pk)
            locked.set()
            release.wait(30)
        connections.close_all()

    def cast(index, user, choice, reason):
        try:
            outcomes[index] = services.cast_vote(gate.pk, user, choice, reason=reason)
        except Exception as exc:  # the outcome under test
            outcomes[index] = exc
        finally:
            connection.close()

    blocker = threading.Thread(target=holder)
    blocker.start()
    assert locked.wait(10)
    threads = [threading.Thread(target=cast, args=(i, *ballot)) for i, ballot in enumerate(ballots)]
    threads[0].start()  # leads a group of one, and waits on the lock
    deadline = time.monotonic() + 10
    while not _leading_alone(gate.pk) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _leading_alone(gate.pk), "the first ballot did not start leading"
    for thread in threads[1:]:
        thread.start()
    while _queued(gate.pk) < len(ballots) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _queued(gate.pk) == len(ballots) - 1, "the later ballots did not queue behind the first"
    release.set()
    for thread in [*threads, blocker]:
        thread.join(30)
    return outcomes


def _quorum_gate(deployment, people, *, voters: int, quorum: int):
    """The crew's gate, voted on by QA Lead holders under a quorum, and ``voters`` new QA Leads."""
    gate = Gate.objects.get(deployment=deployment)
    qa = DeploymentRole.objects.get(deployment=deployment, name="QA Lead")
    new_voters = [make_user(f"qa-voter-{i}") for i in range(voters)]
    for user in new_voters:
        deployment_services.set_participant(deployment, people["lead"], user, role_names=["QA Lead"])
    services.configure_gate(gate.pk, people["lead"], voter_role_ids=[qa.pk], rule=GateRule.QUORUM, quorum=quorum)
    return gate, new_voters


def test_a_group_counts_each_vote_once_closes_once_and_refuses_only_who_must_be(crew):
    deployment, people = crew
    gate, voters = _quorum_gate(deployment, people, voters=5, quorum=3)
    outsider = people["observer"]  # sees the deployment, holds no voting role
    ballots = [
        (voters[0], Decision.NO_GO, "smoke tests red"),  # alone, first: it holds the group's place
        (outsider, Decision.GO, ""),
        (voters[0], Decision.GO, ""),  # changes their mind in the group
        (voters[1], Decision.GO, ""),
        (voters[2], Decision.GO, ""),
        (voters[3], Decision.GO, ""),
        (voters[4], Decision.NO_GO, "too late?"),
    ]
    first, denied, *group = _vote_while_locked(deployment, gate, ballots)

    assert isinstance(first, Vote) and first.choice == Decision.NO_GO
    # Refused alone, and the group went on: as a non-voter before the close, as late after it.
    assert isinstance(denied, PermissionDenied) or "closed" in str(denied), denied
    go_outcomes, late_no_go = group[:4], group[4]
    # Whatever the order inside the group, the third GO closes the gate (quorum 3) and the
    # fourth GO arrives at a closed gate; the NO-GO counts only if it came before the close.
    assert sum(isinstance(o, Vote) for o in go_outcomes) == 3, group
    closed_refusals = [o for o in group if isinstance(o, InvalidChange)]
    assert all("closed" in str(o) for o in closed_refusals)
    assert len(closed_refusals) == 1 + (0 if isinstance(late_no_go, Vote) else 1)
    gate.refresh_from_db()
    assert gate.state == GateState.CLOSED and gate.decision == Decision.GO
    expected = {voters[0].username: Decision.NO_GO}
    for (user, choice, _), outcome in zip(ballots[2:], group, strict=True):
        if isinstance(outcome, Vote):
            expected[user.username] = choice
    assert dict(Vote.objects.filter(gate=gate).values_list("voter__username", "choice")) == expected
    assert Event.objects.filter(deployment=deployment, action="gate.decided").count() == 1
    applied = 1 + sum(isinstance(o, Vote) for o in group)
    assert Event.objects.filter(deployment=deployment, action="vote.cast").count() == applied
    assert verify_chain(deployment.pk).ok


def test_a_vote_for_a_gate_of_another_deployment_is_no_such_gate(crew):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    with pytest.raises(Gate.DoesNotExist):
        services.cast_vote(gate.pk, people["qa"], Decision.GO, deployment_id=deployment.pk + 1000)
    assert not Vote.objects.filter(gate=gate).exists()


def test_a_failure_after_the_commit_never_applies_a_group_twice(crew, monkeypatch):
    """Something run after the group's commit fails (here: the hook that queues the push).
    The votes were committed: each is answered as counted, and none is applied again."""
    deployment, people = crew
    # Four hold QA Lead (the crew's QA and these three): three GO keep the gate open.
    gate, voters = _quorum_gate(deployment, people, voters=3, quorum=4)

    def failing_push(deployment_id):
        transaction.on_commit(lambda: 1 / 0)  # not robust: raised after the COMMIT

    monkeypatch.setattr(services, "_push", failing_push)
    outcomes = _vote_while_locked(deployment, gate, [(user, Decision.GO, "") for user in voters])

    assert all(isinstance(outcome, Vote) for outcome in outcomes), outcomes
    assert Vote.objects.filter(gate=gate).count() == 3
    assert Event.objects.filter(deployment=deployment, action="vote.cast").count() == 3
    assert verify_chain(deployment.pk).ok
