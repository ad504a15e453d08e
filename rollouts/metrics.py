"""Reading a metric: Prometheus, an HTTP JSON value, or a person. No data is not a pass."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from rollouts.models import MetricGate, SourceKind


@dataclass
class Sample:
    value: float | None
    problem: str = ""  # set when the reading is inconclusive


def sample(gate: MetricGate) -> Sample:
    config = gate.source_config or {}
    if gate.source == SourceKind.PROMETHEUS:
        return _prometheus(config)
    if gate.source == SourceKind.HTTP_JSON:
        return _http_json(config)
    return Sample(None, "waiting for a person to read it")


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


def _prometheus(config: dict) -> Sample:
    url = config["url"].rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": config["query"]})
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


def _http_json(config: dict) -> Sample:
    body, problem = _get_json(config["url"])
    if problem:
        return Sample(None, problem)
    value = body
    for key in str(config["path"]).split("."):
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, TypeError, ValueError):
            return Sample(None, f"no value at {config['path']}")
    return _number(value)


def validate_gate(index: int, spec: dict) -> list[str]:
    where = f"gates[{index}]"
    problems = []
    if not spec.get("name"):
        problems.append(f"{where}.name is required")
    source = spec.get("source")
    if source not in SourceKind.values:
        problems.append(f"{where} has no source (prometheus, http_json or manual)")
    elif source == SourceKind.PROMETHEUS:
        if not str(spec.get("url", "")).startswith(("http://", "https://")):
            problems.append(f"{where}.url must be the Prometheus http(s) URL")
        if not spec.get("query"):
            problems.append(f"{where}.query is required for Prometheus")
    elif source == SourceKind.HTTP_JSON:
        if not str(spec.get("url", "")).startswith(("http://", "https://")):
            problems.append(f"{where}.url must be an http(s) URL")
        if not spec.get("path"):
            problems.append(f"{where}.path (e.g. data.error_rate) is required")
    if spec.get("comparator", "<") not in ("<", "<=", ">", ">="):
        problems.append(f"{where}.comparator must be <, <=, > or >=")
    threshold = spec.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        problems.append(f"{where}.threshold {threshold!r} is not a number")
    consecutive = spec.get("consecutive_bad", 1)
    if not isinstance(consecutive, int) or consecutive < 1:
        problems.append(f"{where}.consecutive_bad must be a whole number ≥ 1")
    return problems
