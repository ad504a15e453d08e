"""The rollout controller: walk the stages, sample the gates, advance or abort — and why.

All state lives in the RolloutPlan row. Each ``tick`` (Celery beat, every
WARROOM_ROLLOUT_TICK_SECONDS) takes that row with ``SKIP LOCKED`` and moves it one
step from what is stored, so when the worker running a tick dies, the next tick on
any worker continues without repeating or skipping a stage. Humans pause, resume,
promote and abort through the same row lock, each with a reason in the event log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from deployments import actors, live
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import Deployment, DeploymentState, Phase
from deployments.permissions import TAKE_TRAFFIC_BACK, PermissionDenied, access_for, require_system
from deployments.services import InvalidChange, require_unfinished, transition_state
from rollouts import drafting, metrics, panels, traffic
from rollouts.models import (
    MetricGate,
    MetricReading,
    ReadingStatus,
    RolloutPlan,
    RolloutState,
    RouterKind,
    SourceKind,
    Stage,
    Strategy,
)

ACTIVE = {RolloutState.RUNNING, RolloutState.WAITING}
# Traffic may be on the new version: a NO-GO or a rollback takes it back.
LIVE = {*ACTIVE, RolloutState.PAUSED}


def _push(deployment_id: int) -> None:
    live.publish_on_commit(deployment_id, lambda: panels.render_rollout_push(deployment_id))


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no value"
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{text} {unit}".strip()


# --- defining a plan ---------------------------------------------------------------------------


def parse_duration(value) -> int:
    """Seconds from 300, "300", "5m", "90s", "1h"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = str(value).strip().lower()
    for suffix, factor in (("h", 3600), ("m", 60), ("s", 1)):
        if text.endswith(suffix) and text[:-1].strip().isdigit():
            return int(text[:-1]) * factor
    if text.isdigit():
        return int(text)
    raise ValueError(f'{value!r} is not a duration (e.g. 300, "5m", "90s")')


def validate_plan(spec: dict) -> list[str]:
    """Every problem with a plan, in words; an empty list means it can be saved."""
    if not isinstance(spec, dict):
        return ["The plan must be an object."]
    problems = []
    strategy = spec.get("strategy", Strategy.CANARY)
    if strategy not in Strategy.values:
        problems.append(f"strategy must be one of {', '.join(Strategy.values)}")
    problems += traffic.resolve_router(spec.get("router"))[1]
    stages = spec.get("stages")
    if strategy in (Strategy.BLUE_GREEN, Strategy.ALL_AT_ONCE) and stages is None:
        stages = [{"weight": 100, "hold": spec.get("hold", 0)}]
    if not isinstance(stages, list) or not stages:
        problems.append("stages: at least one stage is needed")
        stages = []
    previous = 0
    for index, stage in enumerate(stages, 1):
        weight = stage.get("weight") if isinstance(stage, dict) else None
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= 100:
            problems.append(f"stages[{index}].weight must be a whole per cent from 1 to 100")
            continue
        if weight <= previous:
            problems.append(f"stages[{index}].weight {weight} % must be more than the stage before ({previous} %)")
        previous = weight
        try:
            parse_duration(stage.get("hold", 0))
        except ValueError as exc:
            problems.append(f"stages[{index}].hold: {exc}")
    if stages and previous != 100:
        problems.append(f"the last stage must reach 100 % (it ends at {previous} %)")
    gates = spec.get("gates", [])
    if not isinstance(gates, list):
        problems.append("gates must be a list")
        gates = []
    for index, gate in enumerate(gates, 1):
        problems += metrics.validate_gate(index, gate) if isinstance(gate, dict) else [f"gates[{index}] must be an object"]
    try:
        if parse_duration(spec.get("sample", spec.get("sample_seconds", 30))) < 1:
            problems.append("sample must be at least 1 second")
    except ValueError as exc:
        problems.append(f"sample: {exc}")
    return problems


@transaction.atomic
def define_plan(deployment: Deployment, spec: dict, *, step=None, actor=None) -> RolloutPlan:
    """Create or replace the deployment's plan (not while it runs)."""
    lock_deployment(deployment.pk)
    require_unfinished(deployment, "its rollout plan no longer changes")
    problems = validate_plan(spec)
    if problems:
        raise InvalidChange("The rollout plan cannot be saved: " + "; ".join(problems) + ".")
    existing = RolloutPlan.objects.select_for_update().filter(deployment=deployment).first()
    if existing and existing.state not in (RolloutState.DRAFT,):
        raise InvalidChange("The rollout has started: its plan can no longer change.")
    if existing:
        existing.delete()
    router, _ = traffic.resolve_router(spec.get("router"))
    plan = RolloutPlan.objects.create(
        deployment=deployment,
        step=step,
        strategy=spec.get("strategy", Strategy.CANARY),
        router=router.kind if router else RouterKind.MANUAL,
        router_def=router,
        sample_seconds=parse_duration(spec.get("sample", spec.get("sample_seconds", 30))),
    )
    stages = spec.get("stages") or [{"weight": 100, "hold": spec.get("hold", 0)}]
    Stage.objects.bulk_create(
        Stage(plan=plan, position=i, weight=s["weight"], hold_seconds=parse_duration(s.get("hold", 0)))
        for i, s in enumerate(stages)
    )
    for gate in spec.get("gates", []):
        source = metrics.resolve_source(gate["source"])
        MetricGate.objects.create(
            plan=plan,
            name=gate["name"],
            source=source.kind if source else SourceKind.MANUAL,
            source_def=source,
            source_config={k: gate[k] for k in ("query", "path") if k in gate},
            comparator=gate.get("comparator", "<"),
            threshold=float(gate["threshold"]),
            unit=gate.get("unit", ""),
            consecutive_bad=gate.get("consecutive_bad", 1),
        )
    if actor is not None or existing:
        record_event(
            deployment.pk,
            actor=actor,
            action="rollout.planned",
            obj=plan,
            summary=f"Rollout plan: {' → '.join(str(s['weight']) + ' %' for s in stages)}, "
            f"{len(spec.get('gates', []))} metric gates",
        )
    _push(deployment.pk)
    return plan


def plan_spec(plan: RolloutPlan) -> dict:
    """A saved plan as the spec ``define_plan`` takes (and a runbook's ``warroom`` block holds)."""
    return {
        "strategy": plan.strategy,
        "router": plan.router_def.name if plan.router_def else "manual",
        "sample": plan.sample_seconds,
        "stages": [{"weight": s.weight, "hold": s.hold_seconds} for s in plan.stages.all()],
        "gates": [
            {
                "name": g.name,
                "source": g.source_def.name if g.source_def else "manual",
                **g.source_config,
                "comparator": g.comparator,
                "threshold": int(g.threshold) if float(g.threshold).is_integer() else g.threshold,
                "unit": g.unit,
                "consecutive_bad": g.consecutive_bad,
            }
            for g in plan.gates.all()
        ],
    }


def setup_from_runbook(deployment: Deployment) -> None:
    """Called when a deployment is created (a ``deployments.hooks.on_created`` receiver).

    A step whose action is a rollout (a ``warroom`` block) carries the plan. Without one, the
    rollout stages the import recognised (and the person importing kept) become a **draft**
    plan: manual router, gates read by a person from the thresholds near the stages
    (``rollouts.drafting``). The lead names a router and metric sources before starting it.
    """
    step = deployment.steps.filter(action="rollout").order_by("phase__position", "position").first()
    if step is not None:
        define_plan(deployment, step.action_config, step=step)
        return
    recognised = deployment.runbook_version.recognised or {}
    draft = drafting.draft_plan(recognised) if recognised.get("placed") else None
    if draft is None:
        return
    spec, place = draft
    if validate_plan(spec):
        return  # a stage list that does not make a rising plan: offered nowhere rather than guessed at
    if place is not None:
        step = deployment.steps.filter(phase__position=place[0], position=place[1]).first()
    define_plan(deployment, spec, step=step)


# --- people ------------------------------------------------------------------------------------


def _operator(plan: RolloutPlan, actor, what: str, *, when_finished: bool = False):
    """``when_finished``: the action stays possible on a finished deployment (only an abort:
    taking traffic back is always allowed)."""
    access = access_for(actor, plan.deployment)
    if not access.can_view:
        raise RolloutPlan.DoesNotExist
    allowed = access.is_lead or (plan.step is not None and access.can_act_on_step(plan.step))
    if not allowed:
        raise PermissionDenied(
            f"Only the lead{' or the ' + plan.step.role.name if plan.step and plan.step.role else ''} may {what}."
        )
    if not when_finished:
        require_unfinished(plan.deployment, f"nobody may {what} any more")


def _locked(plan_id: int) -> RolloutPlan:
    lock_deployment_of(RolloutPlan, plan_id)  # deployments/locks.py: the deployment first
    return RolloutPlan.objects.select_for_update(of=("self",)).select_related("deployment", "step__role").get(pk=plan_id)


@transaction.atomic
def start_rollout(plan_id: int, actor) -> RolloutPlan:
    plan = _locked(plan_id)
    _operator(plan, actor, "start the rollout")
    if plan.state != RolloutState.DRAFT:
        raise InvalidChange(f"The rollout is already {plan.get_state_display().lower()}.")
    if plan.deployment.state != DeploymentState.IN_PROGRESS:
        raise InvalidChange("Start the deployment first: a rollout runs while the deployment is in progress.")
    plan.state, plan.stage_index, plan.started_at = RolloutState.RUNNING, 0, timezone.now()
    plan.stage_started_at = None
    plan.save()
    record_event(plan.deployment_id, actor=actor, action="rollout.started", obj=plan, summary="Rollout started")
    _push(plan.deployment_id)
    return plan


@transaction.atomic
def pause_rollout(plan_id: int, actor, *, reason: str) -> RolloutPlan:
    plan = _locked(plan_id)
    _operator(plan, actor, "pause the rollout")
    if plan.state not in ACTIVE:
        raise InvalidChange(f"The rollout is {plan.get_state_display().lower()}: nothing to pause.")
    if not reason.strip():
        raise InvalidChange("Say why the rollout pauses.")
    plan.state, plan.reason = RolloutState.PAUSED, reason.strip()
    plan.save(update_fields=["state", "reason"])
    record_event(plan.deployment_id, actor=actor, action="rollout.paused", obj=plan, summary=f"Rollout paused: {plan.reason}")
    _push(plan.deployment_id)
    return plan


@transaction.atomic
def resume_rollout(plan_id: int, actor, *, reason: str) -> RolloutPlan:
    plan = _locked(plan_id)
    _operator(plan, actor, "resume the rollout")
    if plan.state != RolloutState.PAUSED:
        raise InvalidChange("Only a paused rollout can resume.")
    if not reason.strip():
        raise InvalidChange("Say why it is safe to resume.")
    plan.state, plan.reason = RolloutState.RUNNING, ""
    plan.last_sample_at = None  # sample afresh: old readings were taken before the pause
    plan.save(update_fields=["state", "reason", "last_sample_at"])
    record_event(
        plan.deployment_id, actor=actor, action="rollout.resumed", obj=plan, summary=f"Rollout resumed: {reason.strip()}"
    )
    _push(plan.deployment_id)
    return plan


@transaction.atomic
def promote_rollout(plan_id: int, actor, *, reason: str) -> RolloutPlan:
    """Skip the rest of the current stage's hold: go to the next weight now."""
    plan = _locked(plan_id)
    _operator(plan, actor, "promote the rollout")
    if plan.state not in (*ACTIVE, RolloutState.PAUSED):
        raise InvalidChange(f"The rollout is {plan.get_state_display().lower()}.")
    if not reason.strip():
        raise InvalidChange("Say why the rollout skips ahead.")
    stages = list(plan.stages.all())
    if plan.stage_index >= len(stages) - 1:
        raise InvalidChange("This is the last stage already.")
    plan.stage_index += 1
    plan.stage_started_at, plan.state, plan.reason = None, RolloutState.RUNNING, ""
    plan.save()
    record_event(
        plan.deployment_id,
        actor=actor,
        action="rollout.promoted",
        obj=plan,
        summary=f"Promoted to {stages[plan.stage_index].weight} %: {reason.strip()}",
    )
    _push(plan.deployment_id)
    return plan


@transaction.atomic
def abort_rollout(plan_id: int, actor, *, reason: str) -> RolloutPlan:
    plan = _locked(plan_id)
    _operator(plan, actor, "abort the rollout", when_finished=True)
    if plan.state in (RolloutState.ABORTED, RolloutState.COMPLETED, RolloutState.DRAFT):
        raise InvalidChange(f"The rollout is {plan.get_state_display().lower()}.")
    if not reason.strip():
        raise InvalidChange("Say why the rollout is aborted.")
    _abort(plan, f"Aborted by {actor.get_full_name() or actor.get_username()}: {reason.strip()}", actor=actor)
    return plan


@transaction.atomic
def confirm_weight(plan_id: int, actor) -> RolloutPlan:
    """Manual router: a person confirms they moved the traffic."""
    plan = _locked(plan_id)
    _operator(plan, actor, "confirm the traffic weight")
    if plan.state != RolloutState.WAITING:
        raise InvalidChange("Nothing is waiting for a confirmation.")
    stage = plan.current_stage
    plan.state, plan.applied_weight, plan.stage_started_at, plan.last_sample_at = (
        RolloutState.RUNNING,
        stage.weight,
        timezone.now(),
        None,
    )
    plan.save()
    record_event(
        plan.deployment_id,
        actor=actor,
        action="rollout.weight",
        obj=plan,
        summary=f"Traffic at {stage.weight} % (confirmed by hand)",
    )
    _push(plan.deployment_id)
    return plan


@transaction.atomic
def enter_reading(gate_id: int, actor, *, value: float, note: str = "") -> MetricReading:
    gate = MetricGate.objects.select_related("plan__deployment", "plan__step__role").get(pk=gate_id)
    lock_deployment(gate.plan.deployment_id)
    plan = RolloutPlan.objects.select_for_update(of=("self",)).select_related("deployment", "step__role").get(pk=gate.plan_id)
    _operator(plan, actor, "enter readings")
    if gate.source != SourceKind.MANUAL:
        raise InvalidChange(f"{gate.name} is read from {gate.get_source_display()}, not by hand.")
    if plan.state not in ACTIVE | {RolloutState.PAUSED}:
        raise InvalidChange("The rollout is not running.")
    stage = plan.current_stage
    reading = _record(gate, plan, stage, metrics.Sample(value), entered_by=actor, note=note.strip()[:300])
    record_event(
        plan.deployment_id,
        actor=actor,
        action="rollout.reading",
        obj=reading,
        summary=f"{gate.name} = {_fmt(value, gate.unit)} read by hand" + (f" ({note.strip()})" if note.strip() else ""),
    )
    _push(plan.deployment_id)
    return reading


# --- the controller ------------------------------------------------------------------------------


def _record(gate, plan, stage, sampled: metrics.Sample, *, entered_by=None, note="") -> MetricReading:
    if sampled.value is None:
        status, reason = ReadingStatus.INCONCLUSIVE, sampled.problem
    else:
        status = ReadingStatus.PASS if gate.passes(sampled.value) else ReadingStatus.FAIL
        reason = (
            ""
            if status == ReadingStatus.PASS
            else (
                f"{gate.name} {_fmt(sampled.value, gate.unit)} {'>' if gate.comparator in '<=' else '<'} "
                f"{_fmt(gate.threshold, gate.unit)}"
            )
        )
    return MetricReading.objects.create(
        gate=gate,
        stage_index=plan.stage_index,
        weight=stage.weight if stage else 0,
        value=sampled.value,
        status=status,
        reason=reason[:300],
        taken_at=timezone.now(),
        entered_by=entered_by,
        note=note,
    )


def _abort(plan: RolloutPlan, reason: str, *, actor=None) -> None:
    """Traffic back to the stable version, then say exactly why, and open the rollback phase."""
    try:
        done = traffic.apply_weight(plan, 0, reason=reason)
        plan.applied_weight = 0
    except traffic.RouterError as exc:
        done = f"MOVING TRAFFIC BACK FAILED: {exc} — move it by hand"
    plan.state, plan.reason, plan.finished_at = RolloutState.ABORTED, reason, timezone.now()
    plan.save()
    record_event(
        plan.deployment_id, actor=actor, action="rollout.aborted", obj=plan, summary=f"Rollout aborted: {reason}. {done}"
    )
    deployment = Deployment.objects.get(pk=plan.deployment_id)
    if deployment.state == DeploymentState.IN_PROGRESS:
        transition_state(
            deployment.pk, DeploymentState.PAUSED, actor=actors.ROLLOUT_CONTROLLER, reason=f"Rollout aborted: {reason}"
        )
    _push(plan.deployment_id)


# --- what other apps' decisions do to the rollout (registered in RolloutsConfig.ready) -----------


def guards_rollout(gate, plan: RolloutPlan) -> bool:
    """A gate guards the rollout when its runbook line (or, for a decision recognised in a step's
    text, its step) is in the rollout's step, or in a later step of the same phase (e.g.
    "Canary healthy? ☐ GO ☐ NO-GO" after the canary)."""
    step = gate.at_step
    if step is None or plan.step_id is None:
        return False
    rollout_step = plan.step
    return step.phase_id == rollout_step.phase_id and (step.position, step.pk) >= (rollout_step.position, rollout_step.pk)


def take_traffic_back_on_no_go(gate, decision: str) -> None:
    """approvals' on_gate_decided receiver: a NO-GO at a gate that guards the rollout aborts it,
    so the traffic goes back to the stable version (the NO-GO has already paused the deployment)."""
    if decision != "no_go":
        return
    plan = (
        RolloutPlan.objects.select_for_update(of=("self",))
        .select_related("step")
        .filter(deployment_id=gate.deployment_id, state__in=LIVE)
        .first()
    )
    if plan is None or not guards_rollout(gate, plan):
        return
    require_system(actors.GATE_DECISION, TAKE_TRAFFIC_BACK)
    _abort(plan, f"NO-GO at “{gate.title}”: {gate.decision_summary}", actor=actors.GATE_DECISION)


def open_rollout(deployment: Deployment) -> list[str]:
    """deployments' open work: a rollout still moving traffic."""
    plan = RolloutPlan.objects.filter(deployment=deployment, state__in=LIVE).first()
    return [f"rollout {plan.get_state_display().lower()} at {plan.applied_weight} %"] if plan else []


def settle_rollout(deployment: Deployment, why: str) -> None:
    """deployments' on_finished receiver: a rolled-back or aborted deployment takes its
    traffic back; a completed one (with an override) stops where it is, paused."""
    plan = RolloutPlan.objects.select_for_update(of=("self",)).filter(deployment=deployment, state__in=LIVE).first()
    if plan is None:
        return
    require_system(actors.WARROOM, TAKE_TRAFFIC_BACK)
    if deployment.state in (DeploymentState.ROLLED_BACK, DeploymentState.ABORTED):
        _abort(plan, f"Rollout aborted: {why}", actor=actors.WARROOM)
        return
    plan.state, plan.reason = RolloutState.PAUSED, f"Stopped at {plan.applied_weight} %: {why}"
    plan.save(update_fields=["state", "reason"])
    record_event(plan.deployment_id, actor=actors.WARROOM, action="rollout.paused", obj=plan, summary=plan.reason)
    _push(plan.deployment_id)


def rollback_phase(deployment_id: int) -> Phase | None:
    return Phase.objects.filter(deployment_id=deployment_id, title__icontains="rollback").order_by("position").first()


def tick(plan_id: int, now=None) -> str:
    """Move one plan one step. Returns what happened (for logs and tests).

    Two phases. Metric sources are read first, with no lock held: a slow Prometheus (up to its
    timeout) must not hold up fifty people voting or ticking on the same deployment. Then,
    under the deployment's lock, the plan is read again and the readings are used only if the
    plan is still at the stage they were taken for; otherwise they are dropped and the next
    tick samples afresh. Router calls stay under the lock: an abort must not be overtaken by a
    weight change that was already on its way.
    """
    now = now or timezone.now()
    deployment_id = RolloutPlan.objects.filter(pk=plan_id).values_list("deployment_id", flat=True).first()
    if deployment_id is None:
        return "idle"
    sampled = _sample_outside_lock(plan_id, now)
    with transaction.atomic():
        # The deployment first (deployments/locks.py); if a person's change holds it right
        # now, this tick steps aside and the next one (WARROOM_ROLLOUT_TICK_SECONDS) goes on.
        free = Deployment.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=deployment_id)
        if free.values_list("pk", flat=True).first() is None:
            return "busy"
        plan = (
            RolloutPlan.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=plan_id, state=RolloutState.RUNNING)
            .select_related("deployment")
            .first()
        )
        if plan is None:
            return "idle"
        stages = list(plan.stages.all())
        stage = stages[plan.stage_index]
        if plan.stage_started_at is None or plan.applied_weight != stage.weight:
            try:
                done = traffic.apply_weight(plan, stage.weight, reason=f"stage {plan.stage_index + 1}")
            except traffic.RouterError as exc:
                plan.state, plan.reason = RolloutState.PAUSED, f"Could not move traffic to {stage.weight} %: {exc}"
                plan.save()
                record_event(plan.deployment_id, actor=None, action="rollout.paused", obj=plan, summary=plan.reason)
                _push(plan.deployment_id)
                return "router-failed"
            if plan.router_def_id is None:
                plan.state = RolloutState.WAITING
                plan.save(update_fields=["state"])
                record_event(plan.deployment_id, actor=None, action="rollout.waiting", obj=plan, summary=done)
                _push(plan.deployment_id)
                return "waiting"
            plan.applied_weight, plan.stage_started_at, plan.last_sample_at = stage.weight, now, None
            plan.save()
            record_event(
                plan.deployment_id, actor=None, action="rollout.weight", obj=plan, summary=f"Traffic at {stage.weight} % ({done})"
            )
            _push(plan.deployment_id)
            return "weight-applied"
        if plan.last_sample_at and (now - plan.last_sample_at).total_seconds() < plan.sample_seconds:
            return "holding"
        if sampled is None or sampled.stage != (plan.stage_index, plan.stage_started_at):
            return "holding"  # the plan moved while the sources were read (or sampling fell due since): next tick
        return _sample_and_decide(plan, stages, stage, now, sampled.values)


@dataclass
class _Sampled:
    stage: tuple  # (stage index, stage started at) the readings were taken for
    values: dict  # gate id → metrics.Sample


def _sample_outside_lock(plan_id: int, now) -> _Sampled | None:
    """The readings of a plan whose sampling is due, taken without any lock; None when none is due."""
    plan = RolloutPlan.objects.filter(pk=plan_id, state=RolloutState.RUNNING).first()
    if plan is None or plan.stage_started_at is None:
        return None
    if plan.last_sample_at and (now - plan.last_sample_at).total_seconds() < plan.sample_seconds:
        return None
    gates = plan.gates.select_related("source_def").exclude(source=SourceKind.MANUAL)
    return _Sampled(stage=(plan.stage_index, plan.stage_started_at), values={gate.pk: metrics.sample(gate) for gate in gates})


def _sample_and_decide(plan, stages, stage, now, values: dict) -> str:
    plan.last_sample_at = now
    plan.save(update_fields=["last_sample_at"])
    gates = list(plan.gates.select_related("source_def"))
    latest = {}
    for gate in gates:
        if gate.source == SourceKind.MANUAL:
            reading = gate.readings.filter(stage_index=plan.stage_index).order_by("-taken_at").first()
            if reading is None and (now - plan.stage_started_at).total_seconds() >= stage.hold_seconds:
                reading = _record(gate, plan, stage, metrics.Sample(None, "no reading was entered during the hold"))
        else:
            # Read before the lock (tick); a gate without a reading is never read here, under the lock.
            sampled = values.get(gate.pk) or metrics.Sample(None, "not read in this tick; read again in the next")
            reading = _record(gate, plan, stage, sampled)
        latest[gate.pk] = reading
    # An abort beats everything: N bad readings in a row at this stage.
    for gate in gates:
        recent = list(gate.readings.filter(stage_index=plan.stage_index).order_by("-taken_at")[: gate.consecutive_bad])
        if len(recent) == gate.consecutive_bad and all(r.status == ReadingStatus.FAIL for r in recent):
            reading = recent[0]
            count = f"for {gate.consecutive_bad} readings" if gate.consecutive_bad > 1 else "in 1 reading"
            _abort(plan, f"{reading.reason} {count} at {stage.weight} %, {reading.taken_at:%H:%M} UTC")
            return "aborted"
    inconclusive = [r for r in latest.values() if r and r.status == ReadingStatus.INCONCLUSIVE]
    if inconclusive:
        reading = inconclusive[0]
        plan.state, plan.reason = RolloutState.PAUSED, f"inconclusive: {reading.gate.name}: {reading.reason}"
        plan.save(update_fields=["state", "reason"])
        record_event(
            plan.deployment_id,
            actor=None,
            action="rollout.paused",
            obj=plan,
            summary=f"Rollout paused, the lead decides: {plan.reason}",
        )
        _push(plan.deployment_id)
        return "inconclusive"
    held = (now - plan.stage_started_at).total_seconds() >= stage.hold_seconds
    all_green = all(r is not None and r.status == ReadingStatus.PASS for r in latest.values())
    _push(plan.deployment_id)
    if not (held and all_green):
        return "sampled"
    if plan.stage_index == len(stages) - 1:
        plan.state, plan.finished_at = RolloutState.COMPLETED, now
        plan.save(update_fields=["state", "finished_at"])
        record_event(
            plan.deployment_id,
            actor=None,
            action="rollout.completed",
            obj=plan,
            summary="Rollout completed: 100 % on the new version, every gate green",
        )
        _push(plan.deployment_id)
        return "completed"
    plan.stage_index += 1
    plan.stage_started_at = None
    plan.save(update_fields=["stage_index", "stage_started_at"])
    record_event(
        plan.deployment_id,
        actor=None,
        action="rollout.advanced",
        obj=plan,
        summary=f"Stage {plan.stage_index} held {stage.hold_seconds} s with every gate green: "
        f"moving to {stages[plan.stage_index].weight} %",
    )
    _push(plan.deployment_id)
    return "advanced"


def tick_all() -> dict[int, str]:
    return {
        plan_id: tick(plan_id) for plan_id in RolloutPlan.objects.filter(state=RolloutState.RUNNING).values_list("pk", flat=True)
    }


def recent_readings(plan: RolloutPlan, minutes: int = 240):
    since = timezone.now() - timedelta(minutes=minutes)
    return MetricReading.objects.filter(gate__plan=plan, taken_at__gte=since).select_related("gate").order_by("taken_at")
