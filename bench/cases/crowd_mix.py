"""crowd_mix: 50 people through HTTP at once for 30 s — votes, ticks and field writes — on the
`make run`-shaped server (several processes): latency p50/p99, errors, deadlocks.

Each person acts about once a second (a think time of 0.5–1.5 s): votes change back and
forth on one gate that stays open, ticks go to that person's own lines, field writes to
that person's own field. A refusal or a server error is an error; a deadlock is counted from
the server's log.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time

from bench.support import LAST_SERVER, make_crew, percentiles, server_cpu_seconds, session_for, web_server

PEOPLE = 50
SECONDS = 30


async def _crowd(base_url, deployment_id, gate_id, people):
    import aiohttp

    csrf = secrets.token_hex(16)
    latencies, failures, counts = [], [], {"vote": 0, "tick": 0, "field": 0}
    end = time.perf_counter() + SECONDS

    async def person(http, sessionid, ticks, field_id, rng):
        headers = {"Cookie": f"sessionid={sessionid}; csrftoken={csrf}", "X-CSRFToken": csrf, "HX-Request": "true"}
        n = 0
        while time.perf_counter() < end:
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            kind = ("vote", "tick", "field")[n % 3]
            if kind == "vote":
                url = f"{base_url}/deployments/{deployment_id}/gates/{gate_id}/vote/"
                data = {"choice": "go"} if n % 2 else {"choice": "no_go", "reason": f"not yet ({n})"}
            elif kind == "tick":
                url = f"{base_url}/deployments/{deployment_id}/items/{ticks[n % len(ticks)]}/"
                data = {"checked": "1" if (n // 3) % 2 == 0 else "0"}
            else:
                url = f"{base_url}/deployments/{deployment_id}/items/{field_id}/"
                data = {"value": f"reading {n}"}
            began = time.perf_counter()
            async with http.post(url, data=data, headers=headers) as response:
                await response.read()
                if response.status >= 300:
                    failures.append(f"{kind} {response.status} {response.headers.get('HX-Trigger', '')[:120]}")
            latencies.append((time.perf_counter() - began) * 1000)
            counts[kind] += 1
            n += 1

    connector = aiohttp.TCPConnector(limit=PEOPLE)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(
            *(person(http, s, t, f, random.Random(i)) for i, (s, t, f) in enumerate(people))  # noqa: S311 (think times)
        )
    return latencies, failures, counts


def run():
    from approvals import services as approvals
    from approvals.models import GateRule
    from deployments import services
    from deployments.models import DeploymentRole, Item, ItemKind

    deployment, lead, members = make_crew(PEOPLE, items=2 * PEOPLE, label=f"crowd{int(time.time())}")
    role = DeploymentRole.objects.get(deployment=deployment, name="QA Lead")
    decider = DeploymentRole.objects.create(deployment=deployment, name="Release manager", position=9)
    services.set_participant(deployment, lead, lead, role_names=["Release manager"], is_lead=True)
    # The release manager decides and does not vote here, so the gate stays open all along.
    gate = approvals.add_gate(
        deployment,
        lead,
        title="Go/no-go",
        voter_role_ids=[role.pk, decider.pk],
        rule=GateRule.DECIDER,
        decider_role_id=decider.pk,
    )
    checks = list(Item.objects.filter(deployment=deployment, kind=ItemKind.CHECK).order_by("pk").values_list("pk", flat=True))
    step = deployment.steps.order_by("pk").first()
    people = []
    for i, user in enumerate(members):
        field = Item.objects.create(deployment=deployment, step=step, kind=ItemKind.FIELD, text=f"Reading {i}", position=900 + i)
        people.append((session_for(user), checks[2 * i : 2 * i + 2], field.pk))
    with web_server() as base_url:
        log_path = LAST_SERVER["log"]
        cpu_before = server_cpu_seconds(LAST_SERVER["pid"])
        latencies, failures, counts = asyncio.run(_crowd(base_url, deployment.pk, gate.pk, people))
        cpu = server_cpu_seconds(LAST_SERVER["pid"]) - cpu_before
    deadlocks = open(log_path).read().count("deadlock detected")
    yield {
        "people": PEOPLE,
        "seconds": SECONDS,
        "operations": len(latencies),
        **counts,
        **percentiles(latencies),
        "server_cpu_ms_per_op": round(cpu / max(1, len(latencies)) * 1000, 1),
        "errors": len(failures),
        "first_errors": failures[:3],
        "deadlocks": deadlocks,
    }
