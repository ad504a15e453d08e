"""The rollout plan as a form: strategy, router, sampling, stages and metric gates.

One form serves the runbook editor (the step that carries the rollout) and the lead's plan
page of a deployment. It builds the spec ``controller.define_plan`` and a runbook's
``warroom`` block take, and is checked by ``controller.validate_plan`` — the one set of
rules — whose problems are put back next to the field or row they name.

A plan only *names* a router and metric sources (selects of what an administrator defined,
or "manual"); their files, commands, addresses and secrets never pass through here. The
only free text a gate carries is the query or JSON path its source reads.

Rows are added and removed without JavaScript: "Add a stage", "Add a gate" and each row's
"Remove" are submit buttons (``ROW_BUTTONS``); the page answers them by showing the form
again with one row more or less, saving nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms

from rollouts import controller
from rollouts.models import MetricSource, MetricSourceKind, Router, SourceKind, Strategy

MANUAL = "manual"
MANUAL_ROUTER_LABEL = "Manual: a person moves the traffic"
MANUAL_SOURCE_LABEL = "Manual: a person reads it"
STAGES, GATES = "stage", "gate"
# The submit buttons that change the rows instead of saving.
ADD_STAGE, ADD_GATE, REMOVE_STAGE, REMOVE_GATE, ADD_SUGGESTED = (
    "add_stage",
    "add_gate",
    "remove_stage",
    "remove_gate",
    "add_suggested",
)
ROW_BUTTONS = (ADD_STAGE, ADD_GATE, REMOVE_STAGE, REMOVE_GATE, ADD_SUGGESTED)
MAX_ROWS = 20
COMPARATORS = [("<", "below (<)"), ("<=", "at most (≤)"), (">", "above (>)"), (">=", "at least (≥)")]


def router_choices() -> list[tuple[str, str]]:
    return [(MANUAL, MANUAL_ROUTER_LABEL)] + [
        (router.name, f"{router.name} — {router.get_kind_display()}") for router in Router.objects.all()
    ]


def source_choices() -> list[tuple[str, str]]:
    return [(MANUAL, MANUAL_SOURCE_LABEL)] + [
        (source.name, f"{source.name} — {source.get_kind_display()}") for source in MetricSource.objects.all()
    ]


class PlanForm(forms.Form):
    # The router and sources are names checked by validate_plan (not a ChoiceField's "Select a
    # valid choice"), so a router removed since the page was shown is refused in its words.
    strategy = forms.ChoiceField(choices=Strategy.choices, initial=Strategy.CANARY, label="Strategy")
    router = forms.CharField(max_length=60, initial=MANUAL, label="Router", widget=forms.Select)
    sample = forms.IntegerField(min_value=1, max_value=3600, initial=30, label="Read the gates every (seconds)")

    def __init__(self, *args, steps=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["router"].widget.choices = router_choices()
        if steps is not None:
            self.fields["step"] = forms.TypedChoiceField(
                choices=[("", "Choose the step that moves the traffic"), *steps],
                coerce=int,
                label="Step that carries the rollout",
                error_messages={"required": "Choose the step whose role runs the rollout."},
            )
            self.order_fields(["step"])


class StageForm(forms.Form):
    weight = forms.IntegerField(min_value=1, max_value=100, label="Traffic on the new version (%)")
    hold = forms.DecimalField(min_value=0, max_value=7 * 24 * 60, decimal_places=2, required=False, label="Hold (minutes)")


class GateForm(forms.Form):
    name = forms.CharField(max_length=80, label="Metric")
    source = forms.CharField(max_length=60, initial=MANUAL, label="Read from", widget=forms.Select)
    query = forms.CharField(
        max_length=500,
        required=False,
        label="Query or JSON path",
        help_text="Prometheus: the query; HTTP JSON: the path to the number, e.g. data.error_rate",
    )
    comparator = forms.ChoiceField(choices=COMPARATORS, initial="<", label="Passes while")
    threshold = forms.FloatField(label="Threshold")
    unit = forms.CharField(max_length=12, required=False, label="Unit")
    consecutive_bad = forms.IntegerField(min_value=1, max_value=100, initial=1, label="Bad readings in a row that abort")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].widget.choices = source_choices()


class _Rows(forms.BaseFormSet):
    """Every row may be left blank (a row added and not filled in is no stage): Django skips
    a blank row that is "extra", so every row is treated as one."""

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "empty_permitted": True}


StageRows = forms.formset_factory(StageForm, formset=_Rows, extra=0, max_num=MAX_ROWS, absolute_max=MAX_ROWS)
GateRows = forms.formset_factory(GateForm, formset=_Rows, extra=0, max_num=MAX_ROWS, absolute_max=MAX_ROWS)


def _minutes(seconds: int) -> Decimal | int:
    minutes = Decimal(seconds) / 60
    return int(minutes) if minutes == minutes.to_integral_value() else minutes.quantize(Decimal("0.01"))


def _plain_number(value):
    """1.0 shows as 1: a threshold typed as a whole number reads back as one."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def initial_from_spec(spec: dict | None) -> tuple[dict, list[dict], list[dict]]:
    """(plan fields, stage rows, gate rows) showing a spec: a saved plan, a step's block, a draft."""
    spec = spec or {}
    router = spec.get("router", MANUAL)
    if isinstance(router, dict):
        router = MANUAL if router.get("kind") == MANUAL else ""
    try:
        sample = controller.parse_duration(spec.get("sample", spec.get("sample_seconds", 30)))
    except ValueError:
        sample = 30
    plan = {"strategy": spec.get("strategy", Strategy.CANARY), "router": router or MANUAL, "sample": sample}
    stages = []
    for stage in spec.get("stages") or []:
        try:
            hold = _minutes(controller.parse_duration(stage.get("hold", 0)))
        except ValueError:
            hold = None
        stages.append({"weight": stage.get("weight"), "hold": hold})
    gates = [
        {
            "name": gate.get("name", ""),
            "source": gate.get("source", MANUAL),
            "query": gate.get("query") or gate.get("path") or "",
            "comparator": gate.get("comparator", "<"),
            "threshold": _plain_number(gate.get("threshold")),
            "unit": gate.get("unit", ""),
            "consecutive_bad": gate.get("consecutive_bad", 1),
        }
        for gate in spec.get("gates") or []
    ]
    return plan, stages, gates


class RolloutPlanEditor:
    """The plan form with its stage and gate rows; ``is_valid()``, then ``spec``.

    ``steps``: [(step id, label)] when the plan is edited in a runbook, where a step carries it.
    """

    def __init__(self, data=None, *, spec=None, steps=None, step=None, suggested=None):
        self.steps = steps
        self.suggested = [{k: v for k, v in gate.items() if k != "line"} for gate in suggested or []]
        self.spec: dict | None = None
        self.row_change = next((name for name in ROW_BUTTONS if name in data), None) if data is not None else None
        if self.row_change:
            # Not a save: show the posted rows again, one more or one fewer (nothing is checked).
            plan, stages, gates = self._rows_changed(data, self.row_change)
            step = plan.pop("step", None)
            data = None
        else:
            plan, stages, gates = initial_from_spec(spec)
        if steps is not None:
            plan["step"] = step
        self.form = PlanForm(data, initial=None if data is not None else plan, steps=steps)
        self.stages = StageRows(data, initial=None if data is not None else stages, prefix=STAGES)
        self.gates = GateRows(data, initial=None if data is not None else gates, prefix=GATES)
        self.problems: list[str] = []  # what belongs to no field or row

    def _rows_changed(self, data, change) -> tuple[dict, list[dict], list[dict]]:
        """The rows as posted (as typed, unchecked), with one added or removed."""
        plan = PlanForm(data, steps=self.steps)
        stages = StageRows(data, prefix=STAGES)
        gates = GateRows(data, prefix=GATES)
        raw_plan = {name: plan[name].value() for name in plan.fields}
        if not stages.management_form.is_valid() or not gates.management_form.is_valid():
            stage_rows, gate_rows = [], []  # a tampered form: start the rows again rather than fail
        else:
            stage_rows = [{name: form[name].value() for name in form.fields} for form in stages]
            gate_rows = [{name: form[name].value() for name in form.fields} for form in gates]
        value = str(data.get(change, ""))
        index = int(value) if value.isdigit() else -1
        if change == ADD_STAGE and len(stage_rows) < MAX_ROWS:
            stage_rows.append({})
        elif change == ADD_GATE and len(gate_rows) < MAX_ROWS:
            gate_rows.append({})
        elif change == REMOVE_STAGE and 0 <= index < len(stage_rows):
            del stage_rows[index]
        elif change == REMOVE_GATE and 0 <= index < len(gate_rows):
            del gate_rows[index]
        elif change == ADD_SUGGESTED and 0 <= index < len(self.suggested) and len(gate_rows) < MAX_ROWS:
            gate_rows.append(initial_from_spec({"gates": [self.suggested[index]]})[2][0])
        return raw_plan, stage_rows, gate_rows

    # --- checking -----------------------------------------------------------------------------

    def is_valid(self) -> bool:
        if self.row_change or not self.form.is_bound:
            return False
        shaped = all([self.form.is_valid(), self.stages.is_valid(), self.gates.is_valid()])
        if not shaped:
            return False
        spec, stage_rows, gate_rows = self._build()
        for problem in controller.validate_plan(spec):
            self._place(problem, stage_rows, gate_rows)
        if self.has_errors:
            return False
        self.spec = spec
        return True

    @property
    def has_errors(self) -> bool:
        return bool(
            self.problems
            or self.form.errors
            or any(form.errors for form in self.stages)
            or any(form.errors for form in self.gates)
            or self.stages.non_form_errors()
            or self.gates.non_form_errors()
        )

    @property
    def step_id(self) -> int | None:
        return self.form.cleaned_data.get("step") if self.form.is_bound and hasattr(self.form, "cleaned_data") else None

    def _build(self) -> tuple[dict, list, list]:
        data = self.form.cleaned_data
        stage_rows = [form for form in self.stages if form.cleaned_data]
        gate_rows = [form for form in self.gates if form.cleaned_data]
        spec = {
            "strategy": data["strategy"],
            "router": data["router"],
            "sample": data["sample"],
            "stages": [
                {"weight": form.cleaned_data["weight"], "hold": round((form.cleaned_data["hold"] or 0) * 60)}
                for form in stage_rows
            ],
            "gates": [self._gate(form) for form in gate_rows],
        }
        return spec, stage_rows, gate_rows

    def _gate(self, form) -> dict:
        data = form.cleaned_data
        gate = {"name": data["name"], "source": data["source"]}
        query = data["query"].strip()
        kind = MetricSource.objects.filter(name=data["source"]).values_list("kind", flat=True).first()
        if query:
            if data["source"] == SourceKind.MANUAL:
                form.add_error("query", "A person reads this gate: leave the query empty, or choose a metric source.")
            gate["path" if kind == MetricSourceKind.HTTP_JSON else "query"] = query
        threshold = data["threshold"]
        gate.update(
            comparator=data["comparator"],
            threshold=int(threshold) if threshold.is_integer() else threshold,
            unit=data["unit"].strip(),
            consecutive_bad=data["consecutive_bad"],
        )
        return gate

    _ROW_RE = re.compile(r"^(stages|gates)\[(\d+)\](?:\.(\w+))?\s*(.*)$", re.DOTALL)
    _FIELDS = {"weight", "hold", "name", "source", "query", "path", "comparator", "threshold", "consecutive_bad"}

    def _place(self, problem: str, stage_rows: list, gate_rows: list) -> None:
        """Put one of validate_plan's problems next to what it names."""
        match = self._ROW_RE.match(problem)
        if match:
            which, index, field, rest = match.group(1), int(match.group(2)), match.group(3), match.group(4)
            rows = stage_rows if which == "stages" else gate_rows
            form = rows[index - 1] if 0 < index <= len(rows) else None
            if form is not None:
                if field in self._FIELDS:
                    field = "query" if field == "path" else field
                    text = f"{form.fields[field].label}: {rest.lstrip(': ')}" if rest else form.fields[field].label
                    form.add_error(field, text)
                else:
                    form.add_error(None, f"This {'stage' if which == 'stages' else 'gate'} {rest}")
                return
        if problem.startswith("the last stage") and stage_rows:
            stage_rows[-1].add_error("weight", problem[0].upper() + problem[1:] + ".")
            return
        for field in ("router", "strategy", "sample"):
            if problem.startswith(field):
                self.form.add_error(field, problem[0].upper() + problem[1:])
                return
        self.problems.append(problem[0].upper() + problem[1:])


def readable(spec: dict | None) -> dict | None:
    """A spec for reading on a page: each stage's hold in words ("15 min", "90 s")."""
    if not spec:
        return None
    stages = []
    for stage in spec.get("stages") or []:
        try:
            seconds = controller.parse_duration(stage.get("hold", 0))
        except ValueError:
            seconds = None
        if seconds is None:
            hold = str(stage.get("hold"))
        elif seconds % 60:
            hold = f"{seconds} s"
        else:
            hold = f"{seconds // 60} min"
        stages.append({"weight": stage.get("weight"), "hold": hold})
    return {**spec, "stages": stages}
