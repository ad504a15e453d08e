"""The war room's panels that other apps own: incidents, gates and approvals, the rollout,
communications, and the runs under a step.

Like the report sections (``reports.sections.provide``) and the service hooks
(``deployments.hooks``), an app registers its panel once, in its ``AppConfig.ready()``;
``deployments`` loads and places whatever is registered and imports nothing of theirs::

    from deployments import panels

    panels.provide("approvals", load=load_approvals, template="approvals/panel.html", slot=panels.MAIN, position=20)

- ``load(deployment_id, board=None)`` returns what the panel's partial reads under ``name``
  (the board view, the TV and the phone view get it in their context under that name too).
  When the page loads the whole board first, ``board`` is that ``Board``: use its deployment
  and participants rather than reading them again (a push calls ``load`` without it).
  A panel in the ``STEP`` slot returns ``{step id: value}`` instead; each step of the board
  then carries its value in ``step.parts[name]``.
- ``template`` is the app's own template. Its partial ``name`` is what a push swaps (an
  element with ``hx-swap-oob`` when ``oob`` is set); the page includes the partial
  ``partial`` (default: ``name``), which is that one or wraps it with what only the page has
  (a button bar, an empty preview box). The app's push renderer renders the partial ``name``:
  a push is exactly what a reload would show.
- ``slot`` is where the page puts it: ``MAIN`` (above the phases), ``SIDE`` (the aside,
  below the people) or ``STEP`` (inside each step, below its code); ``position`` orders
  the panels of one slot, lowest first.
- ``follows_state``: the panel's buttons depend on the deployment's state, so a state
  change pushes it with the header.
- ``tv(value)`` adds to the loaded value what only the TV shows (e.g. sparklines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string

MAIN, SIDE, STEP = "main", "side", "step"
SLOTS = (MAIN, SIDE, STEP)
# What the board's context already holds: a panel of that name would hide it.
RESERVED = {"board", "d", "seq", "epoch", "oob", "step"}


@dataclass(frozen=True)
class Panel:
    name: str
    load: Callable[[int], Any]
    template: str
    slot: str
    position: int
    partial: str = ""
    follows_state: bool = False
    tv: Callable[[Any], None] | None = None

    @property
    def ref(self) -> str:
        """What the page includes: ``template#partial``."""
        return f"{self.template}#{self.partial or self.name}"

    @property
    def push_ref(self) -> str:
        """What a push renders: ``template#name``."""
        return f"{self.template}#{self.name}"


_panels: dict[str, Panel] = {}


def provide(
    name: str,
    *,
    load: Callable[[int], Any],
    template: str,
    slot: str,
    position: int,
    partial: str = "",
    follows_state: bool = False,
    tv: Callable[[Any], None] | None = None,
) -> None:
    if slot not in SLOTS:
        raise ValueError(f"Unknown war-room slot {slot!r} (one of {', '.join(SLOTS)}).")
    if name in RESERVED:
        raise ValueError(f"A war-room panel cannot be called {name!r}: the board's context uses that name.")
    # ready() may run twice in tests: the same name registers once, the last one wins.
    _panels[name] = Panel(name, load, template, slot, position, partial, follows_state, tv)


def in_slot(slot: str) -> list[Panel]:
    return sorted((p for p in _panels.values() if p.slot == slot), key=lambda p: (p.position, p.name))


def placed() -> dict[str, list[Panel]]:
    """The panels of each slot, in order: what the war-room template walks."""
    return {slot: in_slot(slot) for slot in SLOTS}


def load_all(deployment_id: int, board=None) -> dict[str, Any]:
    """Every board-level panel's data, by name (the step panels load with the board)."""
    return {p.name: p.load(deployment_id, board=board) for p in _panels.values() if p.slot != STEP}


def attach_to_steps(deployment_id: int, steps) -> None:
    """Each step gets ``parts``: {panel name: its value for this step, or None}."""
    loaded = [(p.name, p.load(deployment_id)) for p in in_slot(STEP)]
    for step in steps:
        step.parts = {name: by_step.get(step.pk) for name, by_step in loaded}


def prepare_for_tv(context: dict) -> None:
    for panel in _panels.values():
        if panel.tv is not None and panel.name in context:
            panel.tv(context[panel.name])


def render_state_followers(board) -> list[str]:
    """The panels whose buttons depend on the deployment's state, rendered for a push from the
    board the push has just loaded."""
    deployment = board.deployment
    return [
        render_to_string(p.push_ref, {"d": deployment, "oob": True, p.name: p.load(deployment.pk, board=board)})
        for p in in_slot(MAIN) + in_slot(SIDE)
        if p.follows_state
    ]
