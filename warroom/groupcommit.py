"""Group commit: changes that would queue on one lock anyway are applied together.

Fifty people pressing GO at once all need the same deployment's lock: one after another,
each takes it, re-reads the gate, writes, commits, and the last waits for the other
forty-nine. With a group commit the first thread to arrive becomes the *leader*: it takes
every change queued for the same key and applies them in one transaction (one lock, one
read of the shared rows, one commit). Threads arriving meanwhile queue; when the leader is
done, one of them leads the next group. Under no load a group is one change, so nothing
waits for a batch to fill; under load the groups grow by themselves.

The caller gives ``apply(payloads)``, which runs one transaction and returns one outcome
per payload, in order: a result, or the exception that refused that payload alone (checked
before it wrote anything). If ``apply`` raises instead, the group's transaction rolled back
as a whole; each change is then applied on its own, so one person's failure is theirs
alone and nobody else's change is lost.

Knows no app; groups are per process (each web process leads its own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class _Ticket:
    __slots__ = ("done", "outcome", "payload")

    def __init__(self, payload):
        self.payload = payload
        self.done = False
        self.outcome: Any = None


def _settle(ticket: _Ticket, outcome) -> None:
    ticket.outcome, ticket.done = outcome, True


def _result(ticket: _Ticket):
    if isinstance(ticket.outcome, BaseException):
        raise ticket.outcome
    return ticket.outcome


class GroupCommit:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queues: dict[Hashable, list[_Ticket]] = {}
        self._leaders: dict[Hashable, threading.Lock] = {}
        self.largest_group = 0  # for the benchmark and the tests: did groups form?

    def run(self, key: Hashable, payload, apply: Callable[[list], list]):
        ticket = _Ticket(payload)
        with self._mutex:
            self._queues.setdefault(key, []).append(ticket)
            leader = self._leaders.setdefault(key, threading.Lock())
        with leader:
            if not ticket.done:  # a previous leader did not take it: lead this group
                with self._mutex:
                    group = self._queues.pop(key, [])
                    self.largest_group = max(self.largest_group, len(group))
                try:
                    self._apply(group, apply)
                finally:
                    for other in group:
                        if not other.done:  # only if applying itself failed: never leave a caller hanging
                            _settle(other, RuntimeError("the change was not applied; try again"))
        return _result(ticket)

    @staticmethod
    def _apply(group: list[_Ticket], apply: Callable[[list], list]) -> None:
        try:
            outcomes = apply([t.payload for t in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], exc)
                return
            for ticket in group:  # the group's transaction rolled back: each on its own
                try:
                    (outcome,) = apply([ticket.payload])
                except Exception as own:
                    outcome = own
                _settle(ticket, outcome)
            return
        for ticket, outcome in zip(group, outcomes, strict=True):
            _settle(ticket, outcome)
