"""Group commit: changes that would queue on one lock anyway are applied together.

Fifty people pressing GO at once all need the same deployment's lock: one after another,
each takes it, re-reads the gate, writes, commits, and the last waits for the other
forty-nine. With a group commit the first thread to arrive becomes the *leader*: it takes
every change queued for the same key and applies them in one transaction (one lock, one
read of the shared rows, one commit). Threads arriving meanwhile queue and sleep until their
change is settled. When the leader is done it returns to its own caller and hands the
leadership to the first thread still queued, which applies the next group. Under no load a
group is one change, so nothing waits for a batch to fill; under load the groups grow by
themselves, and no leader serves others for longer than one group.

The caller gives ``apply(payloads)``, which runs one transaction and returns one outcome
per payload, in order: a result, or the exception that refused that payload alone (checked
before it wrote anything). ``apply`` must return normally once its transaction committed
(whatever runs after the commit). If it raises, the group's transaction rolled back as a
whole: each change is then applied again on its own, by its own thread on its own database
connection, so one person's failure is theirs alone and nobody else's change is lost.

Knows no app; groups are per process (each web process leads its own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

_ALONE = object()  # the group failed as a whole: apply this change on its own


class _Ticket:
    __slots__ = ("done", "leads", "outcome", "payload", "wake")

    def __init__(self, payload):
        self.payload = payload
        self.done = False
        self.leads = False
        self.outcome: Any = None
        self.wake = threading.Event()


def _settle(ticket: _Ticket, outcome) -> None:
    ticket.outcome, ticket.done = outcome, True
    ticket.wake.set()


class GroupCommit:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queues: dict[Hashable, list[_Ticket]] = {}
        self._leading: set[Hashable] = set()

    def run(self, key: Hashable, payload, apply: Callable[[list], list]):
        ticket = _Ticket(payload)
        with self._mutex:
            self._queues.setdefault(key, []).append(ticket)
            if key not in self._leading:
                self._leading.add(key)
                ticket.leads = True
        if not ticket.leads:
            ticket.wake.wait()  # settled by a leader, or made the leader
        if not ticket.done:
            self._lead(key, apply)
        if ticket.outcome is _ALONE:
            (ticket.outcome,) = _outcomes([payload], apply)
        if isinstance(ticket.outcome, BaseException):
            raise ticket.outcome
        return ticket.outcome

    def queued(self, key: Hashable) -> int:
        """How many changes wait for ``key`` (tests use it to make a group for certain)."""
        with self._mutex:
            return len(self._queues.get(key, []))

    def leading(self, key: Hashable) -> bool:
        with self._mutex:
            return key in self._leading

    def _lead(self, key: Hashable, apply: Callable[[list], list]) -> None:
        with self._mutex:
            group = self._queues.pop(key, [])
        outcomes = None
        try:
            try:
                outcomes = _outcomes([t.payload for t in group], apply)
                if len(outcomes) != len(group):
                    raise RuntimeError("apply must return one outcome per change")
            except Exception as exc:
                outcomes = [exc] if len(group) == 1 else [_ALONE] * len(group)
        finally:
            with self._mutex:  # hand over to the first one still queued, or stop leading
                waiting = self._queues.get(key)
                if waiting:
                    successor = waiting[0]
                    successor.leads = True
                    successor.wake.set()
                else:
                    self._queues.pop(key, None)
                    self._leading.discard(key)
            if outcomes is None:  # interrupted (the process is stopping): nobody is left waiting
                outcomes = [RuntimeError("the change was not applied; try again")] * len(group)
            for ticket, outcome in zip(group, outcomes, strict=True):
                _settle(ticket, outcome)


def _outcomes(payloads: list, apply: Callable[[list], list]) -> list:
    """``apply`` for one group; a single change's unexpected failure is its outcome."""
    try:
        return list(apply(payloads))
    except Exception as exc:
        if len(payloads) > 1:
            raise
        return [exc]
