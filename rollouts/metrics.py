"""Reading a metric: Prometheus, an HTTP JSON value, or a person. No data is not a pass."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from rollouts.models import MetricGate, MetricSource, MetricSourceKind, SourceKind, defined_names


@dataclass
class Sample:
    value: float | None
    problem: str = ""  # set when the reading is inconclusive


def sample(gate: MetricGate) -> Sample:
    """Read the gate's number from its administrator-defined source (the plan gives only the query or path)."""
    config = gate.source_config or {}
    source = gate.source_def
    if source is None:
        return Sample(None, "waiting for a person to read it")
    if source.kind == MetricSourceKind.PROMETHEUS:
        return _prometheus(source.url, config)
    return _http_json(source.url, config)


def _get_json(url: str) -> tuple[dict | list | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (validated http(s) URL)
            return json.loads(response.read(1 << 20)), ""
    except urllib.error.HTTPError as exc:
        return None, f"{url} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return None, f"unreachable: {getattr(exc, 'reason', exc)}"
    except ValueError:
        return None, "the answer is not JSON"


def _number(value) -> Sample:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return Sample(None, f"not a number: {value!r}")
    if math.isnan(number) or math.isinf(number):
        return Sample(None, f"not a finite number: {value}")
    return Sample(number)


def _prometheus(base_url: str, config: dict) -> Sample:
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": config["query"]})
    body, problem = _get_json(url)
    if problem:
        return Sample(None, f"Prometheus {problem}")
    if not isinstance(body, dict) or body.get("status") != "success":
        return Sample(None, f"Prometheus error: {(body or {}).get('error', 'unexpected answer')}")
    data = body.get("data", {})
    result = data.get("result")
    if data.get("resultType") == "scalar":
        return _number(result[1])
    if not result:
        return Sample(None, "the query returned no series")
    if len(result) > 1:
        return Sample(None, f"the query returned {len(result)} series, not one")
    return _number(result[0]["value"][1])


def _http_json(url: str, config: dict) -> Sample:
    body, problem = _get_json(url)
    if problem:
        return Sample(None, problem)
    value = body
    for key in str(config["path"]).split("."):
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, TypeError, ValueError):
            return Sample(None, f"no value at {config['path']}")
    return _number(value)


def resolve_source(name) -> MetricSource | None:
    """A gate's ``source``: "manual" (None) or the name of an administrator-defined metric source."""
    if name == SourceKind.MANUAL:
        return None
    return MetricSource.objects.filter(name=str(name)).first()


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate_gate(index: int, spec: dict) -> list[str]:
    where = f"gates[{index}]"
    problems = []
    if not spec.get("name"):
        problems.append(f"{where}.name is required")
    if "url" in spec:
        problems.append(
            f"{where}.url cannot be given in a plan — metric sources are defined by an administrator; "
            f'name one in "source"{defined_names(MetricSource)}'
        )
    name = spec.get("source")
    source = None
    if not name:
        problems.append(f'{where} has no source (the name of a metric source, or "manual")')
    elif not isinstance(name, str):
        problems.append(f"{where}.source must be a name")
    elif name != SourceKind.MANUAL:
        source = resolve_source(name)
        if source is None:
            problems.append(f"{where}.source: no metric source named {name!r}{defined_names(MetricSource)}")
    if source is not None and source.kind == MetricSourceKind.PROMETHEUS and not _text(spec.get("query")):
        problems.append(f"{where}.query (text) is required for a Prometheus source")
    if source is not None and source.kind == MetricSourceKind.HTTP_JSON and not _text(spec.get("path")):
        problems.append(f"{where}.path (text, e.g. data.error_rate) is required for an HTTP JSON source")
    if spec.get("comparator", "<") not in ("<", "<=", ">", ">="):
        problems.append(f"{where}.comparator must be <, <=, > or >=")
    threshold = spec.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        problems.append(f"{where}.threshold {threshold!r} is not a number")
    consecutive = spec.get("consecutive_bad", 1)
    if not isinstance(consecutive, int) or consecutive < 1:
        problems.append(f"{where}.consecutive_bad must be a whole number ≥ 1")
    return problems
