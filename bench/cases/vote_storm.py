"""vote_storm: 50 voters cast GO on one gate in the same instant, through the real web server.

Reports cast latency (HTTP request → response), the web processes' CPU per vote (pushes
included), and checks that the tally is 50 and the gate closed exactly once.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from bench.support import LAST_SERVER, make_crew, percentiles, server_cpu_seconds, session_for, web_server

VOTERS = 50


async def _storm(base_url, deployment_id, gate_id, sessions):
    import aiohttp

    csrf = secrets.token_hex(16)  # a 32-character CSRF secret: cookie and header must match
    start = asyncio.Event()
    latencies, statuses = [], []

    async def one(http, sessionid):
        await start.wait()
        began = time.perf_counter()
        async with http.post(
            f"{base_url}/deployments/{deployment_id}/gates/{gate_id}/vote/",
            data={"choice": "go"},
            headers={"Cookie": f"sessionid={sessionid}; csrftoken={csrf}", "X-CSRFToken": csrf, "HX-Request": "true"},
        ) as response:
            await response.read()
            statuses.append(response.status)
        latencies.append((time.perf_counter() - began) * 1000)

    connector = aiohttp.TCPConnector(limit=VOTERS)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(one(http, s)) for s in sessions]
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
    return latencies, statuses, wall


def run():
    from approvals import services
    from approvals.models import Gate, GateRule, Vote
    from deployments.models import DeploymentRole, Event

    deployment, lead, members = make_crew(VOTERS, label="storm")
    gate = services.add_gate(
        deployment,
        lead,
        title="Go/no-go",
        voter_role_ids=[DeploymentRole.objects.get(deployment=deployment, name="QA Lead").pk],
        rule=GateRule.QUORUM,
        quorum=VOTERS,
    )
    sessions = [session_for(user) for user in members]
    with web_server() as base_url:
        cpu_before = server_cpu_seconds(LAST_SERVER["pid"])
        latencies, statuses, wall = asyncio.run(_storm(base_url, deployment.pk, gate.pk, sessions))
        live_flush_seconds = 0.5  # the last group's push is rendered after the answers: count it too
        time.sleep(live_flush_seconds)
        cpu = server_cpu_seconds(LAST_SERVER["pid"]) - cpu_before
    gate = Gate.objects.get(pk=gate.pk)
    tally = Vote.objects.filter(gate=gate, choice="go").count()
    closes = Event.objects.filter(deployment=deployment, action="gate.decided").count()
    yield {
        "voters": VOTERS,
        **percentiles(latencies),
        "wall_s": round(wall, 3),
        "server_cpu_ms_per_vote": round(cpu / VOTERS * 1000, 1),
        "http_ok": sum(1 for s in statuses if s < 300),
        "tally": tally,
        "tally_ok": tally == VOTERS,
        "gate_state": gate.state,
        "gate_closed_events": closes,
    }
