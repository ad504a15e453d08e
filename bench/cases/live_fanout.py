"""live_fanout: one change published; time until each of N websocket clients has it.

Measured through the real web server and real Redis, with a bare channel-layer
group_send to N plain channels in the same run as the floor.
"""

from __future__ import annotations

import asyncio
import time

from bench.support import connect_clients, make_crew, percentiles, session_for, web_server

CLIENTS = 50
ROUNDS = 20
WARM_UP = 1  # rounds run first and not counted, on both sides: subscriptions settle in the first one


async def _websocket_rounds(base_url, deployment_id, sessions):
    from deployments import live

    clients = await connect_clients(base_url, deployment_id, sessions)
    loop = asyncio.get_running_loop()
    samples = []
    try:
        for round_no in range(WARM_UP + ROUNDS):
            marker = f"bench-round-{round_no}"

            async def wait_for(ws, marker=marker):
                while True:
                    message = await ws.recv()
                    if marker in message:
                        return time.perf_counter()

            waiters = [asyncio.create_task(wait_for(ws)) for ws in clients]
            started = time.perf_counter()
            await loop.run_in_executor(None, live.publish, deployment_id, [f'<div id="bench" hx-swap-oob="true">{marker}</div>'])
            arrivals = await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
            if round_no >= WARM_UP:
                samples.extend((t - started) * 1000 for t in arrivals)
    finally:
        for ws in clients:
            await ws.close()
    return samples


async def _floor_rounds():
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    group = "bench-floor"
    channels = [await layer.new_channel() for _ in range(CLIENTS)]
    for name in channels:
        await layer.group_add(group, name)
    samples = []
    try:
        for round_no in range(WARM_UP + ROUNDS):

            async def receive(name):
                await layer.receive(name)
                return time.perf_counter()

            waiters = [asyncio.create_task(receive(name)) for name in channels]
            await asyncio.sleep(0.01)  # let every receive start waiting, like an idle consumer
            started = time.perf_counter()
            await layer.group_send(group, {"type": "bench", "round": round_no})
            arrivals = await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
            if round_no >= WARM_UP:
                samples.extend((t - started) * 1000 for t in arrivals)
    finally:
        for name in channels:
            await layer.group_discard(group, name)
    return samples


def run():
    deployment, _, members = make_crew(CLIENTS, label="fanout")
    sessions = [session_for(user) for user in members]
    with web_server() as base_url:
        samples = asyncio.run(_websocket_rounds(base_url, deployment.pk, sessions))
    floor = asyncio.run(_floor_rounds())
    result = {"clients": CLIENTS, "rounds": ROUNDS, **percentiles(samples)}
    result.update(percentiles(floor, prefix="floor_"))
    result.pop("floor_max_ms")
    yield result
