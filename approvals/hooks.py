"""What other apps may hang on a gate decision, registered in their ``AppConfig.ready()``.

``approvals`` calls the receivers and knows nothing of the apps behind them (the rollout
controller takes traffic back on a NO-GO at a gate that guards its stage)::

    from approvals.hooks import on_gate_decided

    on_gate_decided(take_traffic_back_on_no_go)

A receiver gets ``(gate, decision)`` inside the transaction that closed the gate, after
the gate's line is written and a NO-GO has paused the deployment; what it raises undoes
the decision, so a receiver that acts on the outside world reports failures in words
(an event) instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable

_gate_decided: list[Callable] = []


def on_gate_decided(receiver: Callable) -> None:
    if receiver not in _gate_decided:
        _gate_decided.append(receiver)


def gate_decided(gate, decision: str) -> None:
    for receiver in _gate_decided:
        receiver(gate, decision)
