"""The group-commit helper's promise: one outcome per change, and one change's failure is its own."""

import threading
import time

from warroom.groupcommit import GroupCommit


def _run_group(batcher, payloads, apply):
    """Queue every payload behind a first one whose apply is held, then release: {payload: outcome}."""
    outcomes, started, release = {}, threading.Event(), threading.Event()
    groups = []

    def gated_apply(batch):
        groups.append(list(batch))
        if batch == [payloads[0]]:
            started.set()
            release.wait(10)
        return apply(batch)

    def call(payload):
        try:
            outcomes[payload] = batcher.run("key", payload, gated_apply)
        except Exception as exc:  # the outcome under test
            outcomes[payload] = exc

    first = threading.Thread(target=call, args=(payloads[0],))
    first.start()
    assert started.wait(10)
    rest = [threading.Thread(target=call, args=(p,)) for p in payloads[1:]]
    for thread in rest:
        thread.start()
    deadline = time.monotonic() + 10
    while batcher.queued("key") != len(payloads) - 1:
        assert time.monotonic() < deadline, "the later changes did not queue behind the first"
        time.sleep(0.005)
    release.set()
    for thread in [first, *rest]:
        thread.join(10)
    return outcomes, groups


def test_changes_queued_behind_a_leader_are_applied_as_one_group_in_arrival_order():
    seen = []

    def apply(batch):
        seen.append(batch)
        return [p * 10 for p in batch]

    outcomes, groups = _run_group(GroupCommit(), [1, 2, 3, 4], apply)
    assert outcomes == {1: 10, 2: 20, 3: 30, 4: 40}
    assert groups[0] == [1]
    assert sorted(groups[1]) == [2, 3, 4] and len(groups) == 2


def test_a_refusal_is_that_change_s_alone():
    def apply(batch):
        return [ValueError(f"no {p}") if p == 3 else p for p in batch]

    outcomes, _ = _run_group(GroupCommit(), [1, 2, 3, 4], apply)
    assert outcomes[1] == 1 and outcomes[2] == 2 and outcomes[4] == 4
    assert isinstance(outcomes[3], ValueError) and str(outcomes[3]) == "no 3"


def test_a_group_that_fails_as_a_whole_is_retried_one_by_one():
    def apply(batch):
        if 3 in batch and len(batch) > 1:
            raise RuntimeError("the group's transaction rolled back")
        if batch == [3]:
            raise KeyError("three alone fails too")
        return [p for p in batch]

    outcomes, groups = _run_group(GroupCommit(), [1, 2, 3, 4], apply)
    assert outcomes[1] == 1 and outcomes[2] == 2 and outcomes[4] == 4
    assert isinstance(outcomes[3], KeyError)
    assert [g for g in groups if len(g) == 1 and g != [1]]  # the retries were one change each


def test_a_leader_answers_its_own_caller_and_hands_over_to_the_next():
    """The first caller gets its answer after its own group; the ones queued meanwhile are a
    group led by one of them, and nothing stays queued or led afterwards."""
    batcher = GroupCommit()
    outcomes, groups = _run_group(batcher, ["a", "b", "c"], lambda batch: [p.upper() for p in batch])
    assert outcomes == {"a": "A", "b": "B", "c": "C"}
    assert groups[0] == ["a"] and sorted(groups[1]) == ["b", "c"]
    assert batcher.queued("key") == 0 and not batcher.leading("key")
