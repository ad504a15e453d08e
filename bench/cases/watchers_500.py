"""watchers_500: 500 screens on one deployment across the web processes, a tick every 200 ms
for 30 s: delivery to every screen p50/p99, server CPU seconds per push, and pushes lost (0).

The screens connect to one `make run`-shaped server (gunicorn, WARROOM_WEB_PROCESSES
uvicorn processes; the kernel spreads the connections over them). Each tick is a real HTTP
tick of a different checklist line, so every screen must see every line's marker.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time

from bench.support import LAST_SERVER, connect_clients, make_crew, percentiles, server_cpu_seconds, session_for, web_server

SCREENS = 500
INTERVAL = 0.2
SECONDS = 30
TICKS = int(SECONDS / INTERVAL)
TICKED = re.compile(r'id="cb-(\d+)"[^>]*\schecked[\s/>]')  # the attribute itself, not aria-checked


async def _watch(base_url, server_pid, deployment_id, sessions, *, ticker_session, items):
    import aiohttp

    clients = await connect_clients(base_url, deployment_id, sessions)
    arrivals: list[dict[int, float]] = [{} for _ in clients]
    wanted = {item_id for item_id, _ in items}

    async def read(index, ws):
        try:
            async for message in ws:
                now = time.perf_counter()
                # A push carries a whole step, other lines included: a line counts as arrived
                # only when it shows ticked.
                for match in TICKED.finditer(message):
                    item_id = int(match.group(1))
                    if item_id in wanted and item_id not in arrivals[index]:
                        arrivals[index][item_id] = now
        except Exception:
            return

    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(clients)]
    csrf = secrets.token_hex(16)
    sent: dict[int, float] = {}
    statuses = []
    cpu_before = server_cpu_seconds(server_pid)
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        for n, (item_id, _revision) in enumerate(items):
            await asyncio.sleep(max(0.0, n * INTERVAL - (time.perf_counter() - started)))  # one tick every INTERVAL
            sent[item_id] = time.perf_counter()
            async with http.post(
                f"{base_url}/deployments/{deployment_id}/items/{item_id}/",
                data={"checked": "1"},
                headers={"Cookie": f"sessionid={ticker_session}; csrftoken={csrf}", "X-CSRFToken": csrf, "HX-Request": "true"},
            ) as response:
                statuses.append(response.status)
    deadline = time.perf_counter() + 20
    while time.perf_counter() < deadline and any(len(a) < len(items) for a in arrivals):
        await asyncio.sleep(0.2)
    cpu_used = server_cpu_seconds(server_pid) - cpu_before
    dropped = sum(1 for ws in clients if ws.close_code is not None)  # closed before the end
    for task in readers:
        task.cancel()
    # Close all at once, bounded: 500 closing handshakes one after another take minutes.
    await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True), timeout=30)
    samples = [(a[item_id] - sent[item_id]) * 1000 for a in arrivals for item_id in a]
    lost = sum(len(items) - len(a) for a in arrivals)
    return samples, lost, cpu_used, statuses, dropped


def run():
    from deployments.models import Item

    deployment, _lead, members = make_crew(SCREENS, items=TICKS, label=f"watch{int(time.time())}")
    sessions = [session_for(user) for user in members]
    items = list(Item.objects.filter(deployment=deployment).order_by("pk").values_list("pk", "revision"))[:TICKS]
    with web_server() as base_url:
        pid = LAST_SERVER["pid"]
        samples, lost, cpu, statuses, dropped = asyncio.run(
            _watch(base_url, pid, deployment.pk, sessions, ticker_session=session_for(members[0]), items=items)
        )
    pushes = len(items)
    yield {
        "screens": SCREENS,
        "ticks": pushes,
        "interval_ms": int(INTERVAL * 1000),
        **percentiles(samples),
        "lost": lost,
        "sockets_closed_early": dropped,
        "http_errors": sum(1 for s in statuses if s >= 300),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_push": round(cpu / pushes * 1000, 1),
    }
