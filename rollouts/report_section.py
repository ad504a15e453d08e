"""The rollouts part of the signed report: task runs with artifacts and log tails; the rollout."""

from reports.sections import Section, Table
from rollouts.charts import gate_chart
from rollouts.controller import recent_readings
from rollouts.models import RolloutPlan, TaskRun


def task_runs_section(deployment):
    runs = list(
        TaskRun.objects.filter(deployment=deployment).select_related("target", "step", "started_by").order_by("created_at")
    )
    if not runs:
        return None
    rows, records = [], []
    for run in runs:
        artifact = ""
        if run.result.get("path"):
            artifact = f"{run.result['path']} · {run.result.get('size_bytes')} bytes · sha256 {run.result.get('sha256')}"
        elif run.result.get("checks"):
            artifact = f"{run.result.get('passed', 0)} checks passed, {run.result.get('failed', 0)} failed"
        tail = "\n".join(run.log_tail.splitlines()[-8:])
        rows.append(
            [
                f"#{run.pk} {run.get_action_display()}",
                run.target.name,
                run.get_state_display(),
                run.started_at,
                f"{run.duration_seconds} s" if run.duration_seconds is not None else "",
                run.exit_code,
                artifact or run.error,
                tail,
            ]
        )
        records.append(
            {
                "run": run.pk,
                "step": run.step.title,
                "action": run.action,
                "target": run.target.name,
                "state": run.state,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "exit_code": run.exit_code,
                "error": run.error,
                "result": run.result,
                "log_tail": tail,
                "log_lines": run.log_line_count,
            }
        )
    failed = sum(1 for r in runs if r.state != "succeeded")
    return Section(
        summary=f"{len(runs)} task runs, {len(runs) - failed} succeeded" + (f", {failed} did not" if failed else ""),
        tables=[
            Table(
                caption="Task runs",
                columns=["Run", "Target", "State", "Started", "Duration", "Exit", "Result", "Log tail"],
                rows=rows,
            )
        ],
        records=records,
    )


def rollout_section(deployment):
    plan = RolloutPlan.objects.filter(deployment=deployment).first()
    if plan is None:
        return None
    stages = list(plan.stages.all())
    gates = list(plan.gates.all())
    readings = list(recent_readings(plan, minutes=60 * 24 * 30))
    summary = f"{plan.get_strategy_display()}: {plan.get_state_display()}" + (f" — {plan.reason}" if plan.reason else "")
    return Section(
        summary=summary,
        tables=[
            Table(
                caption="Stages",
                columns=["Stage", "Weight", "Hold"],
                rows=[[str(i + 1), f"{s.weight} %", f"{s.hold_seconds} s"] for i, s in enumerate(stages)],
                note=f"Router: {plan.get_router_display()}; gates sampled every {plan.sample_seconds} s.",
            ),
            Table(
                caption="Metric gates",
                columns=["Gate", "Source", "Threshold", "Readings", "Bad readings"],
                rows=[
                    [
                        g.name,
                        g.get_source_display(),
                        f"{g.comparator} {g.threshold:g} {g.unit}".strip(),
                        str(sum(1 for r in readings if r.gate_id == g.pk)),
                        str(sum(1 for r in readings if r.gate_id == g.pk and r.status == "fail")),
                    ]
                    for g in gates
                ],
            ),
            Table(
                caption="Readings per stage",
                columns=["Gate", "Stage", "Readings", "Lowest", "Highest", "Last", "Bad", "Inconclusive"],
                rows=readings_per_stage(gates, readings),
                note="Every reading is kept in the record (JSON) and drawn in the charts; here they are summed up per stage.",
            ),
        ],
        records=[
            {
                "strategy": plan.strategy,
                "state": plan.state,
                "reason": plan.reason,
                "stages": [{"weight": s.weight, "hold_s": s.hold_seconds} for s in stages],
                "readings": [
                    {
                        "gate": r.gate.name,
                        "value": r.value,
                        "status": r.status,
                        "weight": r.weight,
                        "at": r.taken_at,
                        "reason": r.reason,
                    }
                    for r in readings
                ],
            }
        ],
        pictures=[gate_chart(g, readings) for g in gates],
    )


def readings_per_stage(gates, readings) -> list[list[str]]:
    """One row per gate and stage: how many readings, their range, the last one, how many were bad."""
    rows = []
    for gate in gates:
        by_stage: dict[tuple[int, int], list] = {}
        for reading in readings:
            if reading.gate_id == gate.pk:
                by_stage.setdefault((reading.stage_index, reading.weight), []).append(reading)
        for (stage_index, weight), group in sorted(by_stage.items()):
            values = [r.value for r in group if r.value is not None]

            def shown(value, unit=gate.unit):
                return f"{value:g} {unit}".strip() if value is not None else "—"

            rows.append(
                [
                    gate.name,
                    f"{stage_index + 1} ({weight} %)" if stage_index >= 0 else f"{weight} %",
                    str(len(group)),
                    shown(min(values) if values else None),
                    shown(max(values) if values else None),
                    shown(group[-1].value),
                    str(sum(1 for r in group if r.status == "fail")),
                    str(sum(1 for r in group if r.status == "inconclusive")),
                ]
            )
    return rows
