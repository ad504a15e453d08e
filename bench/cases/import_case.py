"""import: how long a runbook import takes, parse and store, from the shared runbooks to a 1 MB one.

``make bench CASE=import WARROOM_BENCH_RUNBOOKS=path/to/runbooks`` adds a folder of your own.
For each runbook: parse alone (parse_runbook), then the whole import (import_runbook:
parse + one transaction of inserts) into the bench database; store_ms is the
difference of the medians. Also the Markdown export of the stored version, and a
check that exporting and importing again keeps the counts. Every runbook made
here is deleted afterwards.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from bench.support import BASE_DIR

DEMO = Path(BASE_DIR) / "checklists" / "demo"
SYNTHETIC_BYTES = 1_000_000


def _median_ms(function, repeats: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def _runbooks():
    """The demo runbooks, any in WARROOM_BENCH_RUNBOOKS (a folder of .md files: a team's own), then 1 MB."""
    folders = [DEMO]
    if os.environ.get("WARROOM_BENCH_RUNBOOKS"):
        folders.append(Path(os.environ["WARROOM_BENCH_RUNBOOKS"]))
    for folder in folders:
        for path in sorted(folder.glob("*.md")):
            yield path.name, path.read_bytes(), 7
    from bench.synthetic import make_synthetic_runbook

    yield f"synthetic-{SYNTHETIC_BYTES // 1000}kB", make_synthetic_runbook(SYNTHETIC_BYTES).encode(), 3


def run():
    from django.conf import settings

    from checklists.importing import export_markdown, import_runbook
    from checklists.models import Runbook
    from checklists.parsing import parse_runbook

    for name, data, repeats in _runbooks():
        created: list[int] = []
        try:
            parse_ms, parsed = _median_ms(lambda data=data: parse_runbook(data, max_bytes=settings.RUNBOOK_MAX_BYTES), repeats)

            def store(data=data, name=name, created=created):
                outcome = import_runbook(data, filename=name)
                created.append(outcome.version.runbook_id)
                return outcome

            total_ms, outcome = _median_ms(store, repeats)
            export_ms, markdown = _median_ms(lambda version=outcome.version: export_markdown(version), repeats)
            again = import_runbook(markdown.encode(), runbook=outcome.version.runbook)
            counts = parsed.counts()
            yield {
                "runbook": name,
                "bytes": len(data),
                "steps": counts["steps"],
                "items": counts["items"] + counts["fields"] + counts["choices"] + counts["gates"],
                "repeats": repeats,
                "parse_ms": round(parse_ms, 1),
                "store_ms": round(total_ms - parse_ms, 1),
                "total_ms": round(total_ms, 1),
                "export_ms": round(export_ms, 1),
                "round_trip_counts_equal": again.parsed.counts() == counts,
            }
        finally:
            Runbook.objects.filter(pk__in=set(created)).delete()
