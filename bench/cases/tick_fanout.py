"""tick_fanout: an HTTP tick (the real web server) reaching 50 connected war-room clients: p50/p99."""

from __future__ import annotations

import asyncio
import secrets
import time

from bench.support import connect_clients, make_crew, percentiles, session_for, web_server

CLIENTS = 50
TICKS = 20


async def _ticks(base_url, deployment_id, sessions, ticker_session, items):
    import aiohttp

    clients = await connect_clients(base_url, deployment_id, sessions)
    csrf = secrets.token_hex(16)
    samples = []
    async with aiohttp.ClientSession() as http:
        for item_id, revision in items[:TICKS]:
            marker = f'id="cb-{item_id}"'

            async def wait_for(ws, marker=marker):
                while True:
                    message = await ws.recv()
                    if marker in message:
                        return time.perf_counter()

            waiters = [asyncio.create_task(wait_for(ws)) for ws in clients]
            started = time.perf_counter()
            async with http.post(
                f"{base_url}/deployments/{deployment_id}/items/{item_id}/",
                data={"revision": str(revision), "checked": "1"},
                headers={"Cookie": f"sessionid={ticker_session}; csrftoken={csrf}", "X-CSRFToken": csrf, "HX-Request": "true"},
            ) as response:
                assert response.status == 204, response.status
            arrivals = await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
            samples.extend((t - started) * 1000 for t in arrivals)
    for ws in clients:
        await ws.close()
    return samples


def run():
    from deployments.models import Item

    deployment, _lead, members = make_crew(CLIENTS, items=50, label=f"tick{int(time.time())}")
    sessions = [session_for(user) for user in members]
    items = list(Item.objects.filter(deployment=deployment).order_by("pk").values_list("pk", "revision"))
    with web_server() as base_url:
        samples = asyncio.run(_ticks(base_url, deployment.pk, sessions, session_for(members[0]), items))
    yield {"clients": CLIENTS, "ticks": TICKS, **percentiles(samples)}
