"""The war-room board: one loader, and renderers for the page and for live pushes.

The page and every push render the same partials of ``deployments/warroom.html``,
so what a screen receives live is exactly what it would get on reload. The loader
runs a fixed number of queries whatever the number of items (and each registered
panel its own fixed number).

The panels of the apps above (incidents, approvals, rollout, communications, a step's
runs) are registered in ``deployments.panels``; their partials live in those apps'
templates, and their push renderers are theirs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from django.contrib.postgres.aggregates import JSONBAgg
from django.db.models import Count, JSONField, Q, Value
from django.db.models.functions import JSONObject
from django.template.loader import render_to_string
from django.utils import timezone

from checklists.models import ItemKind
from deployments import hooks, live, panels
from deployments.clock import clock
from deployments.models import (
    ALLOWED_TRANSITIONS,
    REASON_STATES,
    CodeBlock,
    Deployment,
    DeploymentRole,
    DeploymentState,
    Event,
    Item,
    Participant,
    Step,
)
from deployments.timeline import timeline_svg

TEMPLATE = "deployments/warroom.html"
RECENT_EVENTS = 15


@dataclass
class PhaseView:
    phase: object
    steps: list = field(default_factory=list)
    done: int = 0
    total: int = 0

    @property
    def percent(self):
        return round(100 * self.done / self.total) if self.total else 0


@dataclass
class Board:
    deployment: Deployment
    phases: list[PhaseView]
    steps: list[Step]
    participants: list
    contacts: list
    events: list
    now: object
    # The registered panels by slot (deployments.panels): the template places them.
    slots: dict = field(default_factory=panels.placed)
    done: int = 0
    total: int = 0
    # The first gate line not decided, in runbook order (its ``step`` is loaded with it).
    next_gate: Item | None = None

    @property
    def percent(self):
        return round(100 * self.done / self.total) if self.total else 0

    @cached_property
    def roles(self):
        """The deployment's roles, held or not: read when a screen asks (the war room does not)."""
        return list(self.deployment.roles.all())

    @property
    def late_steps(self):
        t0 = self.deployment.planned_t0
        return [s for s in self.steps if s.is_late(t0, self.now)]

    @property
    def current_step(self):
        """The first step not yet done, in runbook order."""
        return next((s for s in self.steps if s.total_leaves and s.actual_end is None), None)

    @property
    def next_states(self):
        allowed = ALLOWED_TRANSITIONS[DeploymentState(self.deployment.state)]
        return [(state.value, state.label) for state in DeploymentState if state in allowed]

    reason_states = REASON_STATES

    @property
    def resume_reason(self):
        """Why resuming needs a reason (e.g. a NO-GO paused it), or None."""
        if self.deployment.state != DeploymentState.PAUSED:
            return None
        return hooks.resume_needs_reason(self.deployment)

    @property
    def clock(self):
        """Counting, or stopped at the actual end with the duration against the plan."""
        return clock(self.deployment, self.steps, self.now)

    @property
    def timeline(self):
        return timeline_svg(self.deployment, self.steps, self.now)


def _attach_items(steps: list[Step], items: list[Item]) -> None:
    by_step = defaultdict(list)
    children = defaultdict(list)
    for item in items:
        by_step[item.step_id].append(item)
        if item.parent_id:
            children[item.parent_id].append(item)
    for item in items:
        item.child_list = children.get(item.pk, [])
    for step in steps:
        step.all_items = by_step.get(step.pk, [])
        for item in step.all_items:
            item.step = step  # the board's own step: the status panel's "next gate" names it
        step.roots = [i for i in step.all_items if i.parent_id is None]
        leaves = [i for i in step.all_items if not i.is_group]
        step.total_leaves = len(leaves)
        step.done_leaves = sum(1 for i in leaves if i.is_done)
    for item in items:
        if item.is_group:
            item.group_done = all(c.is_done or getattr(c, "group_done", False) for c in item.child_list)


# A step's code blocks, read with the steps (one query, not a prefetch per relation):
# a JSON list in the blocks' own order, turned back into CodeBlock rows by _attach_code_blocks.
_CODE_BLOCKS = JSONBAgg(
    JSONObject(id="code_blocks__id", position="code_blocks__position", info="code_blocks__info", code="code_blocks__code"),
    filter=Q(code_blocks__isnull=False),
    order_by=("code_blocks__position", "code_blocks__id"),
    default=Value([], output_field=JSONField()),
)


def _attach_code_blocks(steps: list[Step]) -> None:
    for step in steps:
        step.code_list = [CodeBlock(step_id=step.pk, **block) for block in step.code_json]


# The roles a participant holds, read with the participants: a JSON list in the roles' order.
_HELD_ROLES = JSONBAgg(
    JSONObject(id="roles__id", deployment_id="roles__deployment_id", name="roles__name", position="roles__position"),
    filter=Q(roles__isnull=False),
    order_by=("roles__position", "roles__id"),
    default=Value([], output_field=JSONField()),
)


def load_participants(deployment: Deployment) -> list[Participant]:
    """The participants with their users and the roles each holds, in one query.

    Each participant's ``roles.all()`` then answers from what was read, as after
    ``prefetch_related("roles")`` (the same rows, the same order), without its second query.
    """
    participants = list(
        Participant.objects.filter(deployment=deployment)
        .select_related("user")
        .annotate(held_roles=_HELD_ROLES)
        .order_by(*Participant._meta.ordering)  # a grouped query drops the model's own order
    )
    for participant in participants:
        roles = participant.roles.all()  # the manager's queryset, not yet run: filled as a prefetch fills it
        roles._result_cache = [DeploymentRole(**role) for role in participant.held_roles]
        roles._prefetch_done = True
        participant._prefetched_objects_cache = {"roles": roles}
    return participants


def load_board(deployment_id: int, *, events: int = RECENT_EVENTS, deployment: Deployment | None = None) -> Board:
    """``deployment``: the row, when the caller has it already (with its runbook version)."""
    if deployment is None:
        deployment = Deployment.objects.select_related("runbook_version").get(pk=deployment_id)
    steps = list(
        Step.objects.filter(deployment=deployment)
        .select_related("role", "phase")
        .annotate(code_json=_CODE_BLOCKS)
        .order_by(*Step._meta.ordering)  # a grouped query drops the model's own order
    )
    _attach_code_blocks(steps)
    items = list(Item.objects.filter(deployment=deployment).select_related("done_by").order_by("step_id", "position", "id"))
    _attach_items(steps, items)
    panels.attach_to_steps(deployment.pk, steps)
    return _board(
        deployment,
        steps,
        participants=load_participants(deployment),
        contacts=list(deployment.contacts.select_related("role")),
        events=_recent_events(deployment, events),
        next_gate=next((i for s in steps for i in s.all_items if i.kind == ItemKind.GATE and not i.is_done), None),
    )


def _board(deployment: Deployment, steps: list[Step], **parts) -> Board:
    """The board of these steps (each with ``done_leaves`` and ``total_leaves``): phases and totals."""
    phases = {}
    for step in steps:
        step.planned_end_at = step.planned_end(deployment.planned_t0)
        view = phases.setdefault(step.phase_id, PhaseView(step.phase))
        view.steps.append(step)
        view.done += step.done_leaves
        view.total += step.total_leaves
    board = Board(deployment=deployment, phases=list(phases.values()), steps=steps, now=timezone.now(), **parts)
    board.done = sum(p.done for p in board.phases)
    board.total = sum(p.total for p in board.phases)
    return board


def _recent_events(deployment: Deployment, count: int = RECENT_EVENTS) -> list[Event]:
    return list(Event.objects.filter(deployment=deployment).select_related(None).order_by("-seq")[:count])


def _done(prefix: str = "") -> Q:
    """Item.is_done as a condition: a checkbox when checked, any other line when it has a value."""
    check = Q(**{f"{prefix}kind": ItemKind.CHECK})
    return (check & Q(**{f"{prefix}checked": True})) | (~check & ~Q(**{f"{prefix}value": ""}))


def _load_item_board(item_ids) -> tuple[Board, list[Step]]:
    """What a tick's push shows, read without the rest of the board: the lines' steps with
    their items, code and runs; every step with its counts (progress, "now", late, the
    timeline); the next open gate; the recent events. No people, no contacts, no other
    step's lines: only the step, progress, status, events and timeline partials render from it.
    ``item_ids``: lines of one deployment (a burst of ticks is one push)."""
    changed = list(Item.objects.select_related("deployment").only("step_id", "deployment").filter(pk__in=item_ids))
    if not changed:
        raise Item.DoesNotExist(f"No items {sorted(item_ids)}")
    deployment = changed[0].deployment
    step_ids = {item.step_id for item in changed if item.deployment_id == deployment.pk}
    leaf = Q(items__is_group=False)
    steps = list(
        Step.objects.filter(deployment=deployment)
        .select_related("role", "phase")
        .annotate(total_leaves=Count("items", filter=leaf), done_leaves=Count("items", filter=leaf & _done("items__")))
        .order_by(*Step._meta.ordering)  # a grouped query drops the model's own order
    )
    shown = [s for s in steps if s.pk in step_ids]
    code = {}
    for block in CodeBlock.objects.filter(step__in=shown):
        code.setdefault(block.step_id, []).append(block)
    for step in shown:
        step.code_list = code.get(step.pk, [])
    _attach_items(shown, list(Item.objects.filter(step__in=shown).select_related("done_by").order_by("position", "id")))
    panels.attach_to_steps(deployment.pk, shown)
    next_gate = (
        Item.objects.filter(deployment=deployment, kind=ItemKind.GATE)
        .exclude(_done())
        .select_related("step")
        .order_by("step__phase__position", "step__position", "step_id", "position", "id")
        .first()
    )
    board = _board(deployment, steps, participants=[], contacts=[], events=_recent_events(deployment), next_gate=next_gate)
    return board, shown


def render(partial: str, board: Board, **extra) -> str:
    return render_to_string(f"{TEMPLATE}#{partial}", {"board": board, "d": board.deployment, "oob": True, **extra})


# --- pushes: each returns the fragments to swap on every screen -------------------------


def render_item_push(item_id: int, *, step_changed: bool) -> list[str]:
    return render_items_push([item_id], step_changed=step_changed)


def render_items_push(item_ids, *, step_changed: bool) -> list[str]:
    board, steps = _load_item_board(item_ids)
    fragments = [render("step", board, step=step) for step in steps]
    fragments += [render("progress", board), render("events", board), render("status", board)]
    if step_changed:
        fragments.append(render("timeline", board))
    return fragments


@dataclass(frozen=True)
class ItemsPush:
    """The push after checklist lines changed. Pushes waiting together merge (``live.Publisher``):
    ten people ticking ten lines in one moment are one render of their steps, the progress,
    the status and the events, not ten."""

    item_ids: frozenset[int]
    step_changed: bool

    merge_key = "deployments.items"

    def merge(self, other: ItemsPush) -> ItemsPush:
        return ItemsPush(self.item_ids | other.item_ids, self.step_changed or other.step_changed)

    def __call__(self) -> list[str]:
        return render_items_push(self.item_ids, step_changed=self.step_changed)


def render_events(deployment: Deployment) -> str:
    """Just the recent-events panel, without loading the board."""
    events = list(Event.objects.filter(deployment=deployment).order_by("-seq")[:RECENT_EVENTS])
    return render_to_string(f"{TEMPLATE}#events", {"board": {"events": events}, "d": deployment, "oob": True})


def render_header_push(deployment_id: int) -> list[str]:
    """The state changed: header, the panels whose buttons depend on the state (approvals), events."""
    board = load_board(deployment_id)
    return [render("header", board), *panels.render_state_followers(board), render("events", board)]


def render_people_push(deployment_id: int) -> list[str]:
    board = load_board(deployment_id)
    return [render("people", board), render("events", board), refresh_marker()]


def render_late_push(deployment_id: int) -> list[str]:
    board = load_board(deployment_id)
    return [render("status", board), render("events", board)]


def render_board_push(deployment_id: int) -> list[str]:
    board = load_board(deployment_id)
    return [render("header", board), render("events", board), refresh_marker()]


def refresh_marker() -> str:
    """Tells every screen to re-fetch the whole board (used when most of it changed)."""
    return '<div id="live-refresh" hx-swap-oob="true" data-refresh="1" hidden></div>'


def board_context(deployment_id: int, *, deployment: Deployment | None = None) -> dict:
    """The board, and every registered panel's data under its name (``approvals``, ``rollout``, …)."""
    # Where the numbers are is read before the board: every push numbered up to ``seq`` was
    # sent after its commit, so this board shows it; a screen re-applies only later pushes.
    epoch, seq = live.current_position(deployment_id)
    board = load_board(deployment_id, deployment=deployment)
    return {
        "board": board,
        "d": board.deployment,
        "seq": seq,
        "epoch": epoch,
        **panels.load_all(deployment_id, board=board),
    }
