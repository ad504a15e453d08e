"""A draft rollout plan from what the import recognised: stages and the thresholds near them.

The runbook says "Stage 2 (5%) — hold 30 min" and "Error rate < 1%"; it never says which router
moves the traffic or where a metric is read — those are defined by an administrator. So the
draft is a manual rollout (a person sets each weight and confirms it) whose gates are read by a
person (``"source": "manual"``), in the plan format ``controller.define_plan`` takes. The lead
names a router and metric sources on the plan page before starting it. Nothing here invents a
URL, a router, a query or a command.
"""

from __future__ import annotations

import re

COMPARATORS = {"<", "<=", ">", ">="}
# A gate passes while its reading meets the rule. A threshold written as the condition to roll back
# ("Rollback if error rate > 2%", "abort when p95 >= 1s") states the failure, so its gate is the opposite.
FAILURE_CONDITION_RE = re.compile(
    r"\b(?:roll\s*back|revert|abort|halt|stop|pause|page|alert|trigger\w*|fail\w*)\b[^.;]{0,40}?\b(?:if|when|on)\b"
    r"|\b(?:rollback|abort|failure)\s+(?:triggers?|criteria|conditions?)\b",
    re.IGNORECASE,
)
OPPOSITE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
BASELINE_UNIT = "× baseline"


def metric_gate(threshold: dict) -> dict | None:
    """A recognised threshold as a manual metric gate, or None if it is not one a person can read as a number."""
    comparator = threshold.get("op")
    value = threshold.get("value")
    if comparator not in COMPARATORS or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    name = " ".join(str(threshold.get("metric") or "").split())[:80]
    if not name:
        return None
    text = str(threshold.get("text") or "")
    position = text.find(str(threshold.get("metric") or "")) if threshold.get("metric") else -1
    if FAILURE_CONDITION_RE.search(text[: position if position > 0 else len(text)]):
        comparator = OPPOSITE[comparator]
    unit = BASELINE_UNIT if threshold.get("relative_to") == "baseline" else str(threshold.get("unit") or "")[:12]
    return {"name": name, "source": "manual", "comparator": comparator, "threshold": value, "unit": unit, "consecutive_bad": 1}


def suggested_gates(recognised: dict) -> list[dict]:
    """Every recognised threshold as a metric gate, once per metric and rule (the plan page offers them)."""
    gates, seen = [], set()
    for threshold in recognised.get("thresholds") or []:
        gate = metric_gate(threshold)
        if gate is None:
            continue
        key = (gate["name"].casefold(), gate["comparator"], gate["threshold"], gate["unit"])
        if key not in seen:
            seen.add(key)
            gates.append({**gate, "line": threshold.get("line")})
    return gates


def suggested_missing_from(spec: dict | None, recognised: dict) -> list[dict]:
    """The runbook's thresholds as gates the plan does not have yet (by name), each with its line."""
    in_plan = {str(gate.get("name", "")).casefold() for gate in (spec or {}).get("gates") or []}
    return [gate for gate in suggested_gates(recognised or {}) if gate["name"].casefold() not in in_plan]


def draft_plan(recognised: dict) -> tuple[dict, tuple[int, int] | None] | None:
    """(plan spec, (phase, step) of the first stage) from the recognised stages, or None without any."""
    drafted = _draft(recognised)
    return drafted[:2] if drafted else None


def draft_lines(recognised: dict) -> list[int]:
    """The runbook's lines the draft was made from (its stages and thresholds), for "drafted from lines …"."""
    drafted = _draft(recognised)
    return drafted[2] if drafted else []


def _draft(recognised: dict) -> tuple[dict, tuple[int, int] | None, list[int]] | None:
    """The draft, where its first stage is, and the source lines it was read from.

    Stages are the whole per cents the runbook names below 100, in rising order, each held as
    long as the runbook says (0 where it says nothing); a last stage at 100 % is added when the
    runbook stops short of it, because a rollout ends with all traffic on the new version.
    Its gates are the thresholds written in the same phases as the stages.
    """
    stages: dict[int, int] = {}
    phases = set()
    first_place = None
    lines = set()
    for entry in recognised.get("rollout_stages") or []:
        percent = entry.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent <= 100:
            continue  # "0.5 %" is not a weight a router takes
        if isinstance(entry.get("line"), int):
            lines.add(entry["line"])
        hold = entry.get("hold_minutes")
        if percent not in stages or (not stages[percent] and isinstance(hold, int)):
            stages[percent] = hold if isinstance(hold, int) and hold >= 0 else 0
        if entry.get("phase") is not None:
            phases.add(entry["phase"])
            if first_place is None and entry.get("step") is not None:
                first_place = (entry["phase"], entry["step"])
    if not any(percent < 100 for percent in stages):
        return None
    if 100 not in stages:
        stages[100] = 0
    gates, seen = [], set()
    for threshold in recognised.get("thresholds") or []:
        gate = metric_gate(threshold)
        if gate is None or (phases and threshold.get("phase") not in phases):
            continue
        key = (gate["name"].casefold(), gate["comparator"], gate["threshold"], gate["unit"])
        if key not in seen:
            seen.add(key)
            gates.append(gate)
            if isinstance(threshold.get("line"), int):
                lines.add(threshold["line"])
    spec = {
        "strategy": "canary",
        "router": "manual",
        "stages": [{"weight": percent, "hold": f"{stages[percent]}m"} for percent in sorted(stages)],
        "gates": gates,
    }
    return spec, first_place, sorted(lines)
