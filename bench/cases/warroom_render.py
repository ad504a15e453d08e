"""warroom_render: server time and SQL queries to render the war room for 50 and 500 items.

The query count must not grow with the number of items (everything is loaded in a
fixed number of queries); the time is the median of several renders in-process.
"""

from __future__ import annotations

import statistics
import time

from bench.support import make_crew

RENDERS = 7


def run():
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    for items in (50, 500):
        deployment, lead, _ = make_crew(0, items=items, label=f"render{items}-{int(time.time())}")
        client = Client(HTTP_HOST="localhost")
        client.force_login(lead)
        url = f"/deployments/{deployment.pk}/"
        client.get(url)  # warm template caches
        timings, queries = [], []
        for _ in range(RENDERS):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            queries.append(len(ctx.captured_queries))
        yield {
            "items": items,
            "render_p50_ms": round(statistics.median(timings), 1),
            "render_max_ms": round(max(timings), 1),
            "queries": max(queries),
            "html_kb": round(len(response.content) / 1024, 1),
        }
