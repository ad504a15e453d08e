"""log_stream: a task prints 20,000 lines as fast as it can; 20 war-room clients watch.

Real worker, real Redis, the real web server. Reports lines/s delivered to each client, the
end-to-end lag (print in the task → line on the websocket) p50/p99, and lines lost
(must be 0: every line arrives, in batches).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

from bench.support import celery_worker, connect_clients, make_crew, percentiles, session_for, web_server

LINES = 20_000
CLIENTS = 20
EMITTER = (
    "import sys, time\n"
    f"for n in range({LINES}):\n"
    "    sys.stdout.write(f'line n={n} t={time.time():.6f}\\n')\n"
    "sys.stdout.flush()\n"
)
LINE = re.compile(r"line n=(\d+) t=([\d.]+)")


async def _watch(base_url, deployment_id, sessions, start):
    clients = await connect_clients(base_url, deployment_id, sessions)
    loop = asyncio.get_running_loop()

    async def collect(ws):
        seen, lags, first_at, last_at = set(), [], None, None
        deadline = loop.time() + 180
        while len(seen) < LINES and loop.time() < deadline:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - loop.time()))
            except TimeoutError:
                break
            now = time.time()
            for n, t in LINE.findall(message):
                if n not in seen:
                    seen.add(n)
                    lags.append((now - float(t)) * 1000)
                    first_at = first_at or now
                    last_at = now
        return seen, lags, first_at, last_at

    tasks = [asyncio.create_task(collect(ws)) for ws in clients]
    started = time.time()
    await loop.run_in_executor(None, start)
    results = await asyncio.gather(*tasks)
    for ws in clients:
        await ws.close()
    return started, results


def run():
    from checklists.models import StepAction
    from deployments.models import Step
    from rollouts import runs
    from rollouts.models import Target, TaskLogLine, TaskRun
    from rollouts.setup import save_target

    deployment, lead, members = make_crew(CLIENTS, label=f"logs{int(time.time())}")
    target = save_target(Target(name=f"bench-logs-{deployment.pk}", commands={"emit": [sys.executable, "-c", EMITTER]}))
    runs.bind_target(deployment, lead, target)
    step = Step.objects.filter(deployment=deployment).first()
    Step.objects.filter(pk=step.pk).update(action=StepAction.COMMAND, action_config={"command": "emit"})
    sessions = [session_for(user) for user in members]
    holder = {}
    with web_server() as base_url, celery_worker():
        started, results = asyncio.run(
            _watch(base_url, deployment.pk, sessions, lambda: holder.setdefault("run", runs.start_run(step.pk, lead)))
        )
    run = TaskRun.objects.get(pk=holder["run"].pk)
    stored = TaskLogLine.objects.filter(run=run).count()
    lags = [lag for _, client_lags, _, _ in results for lag in client_lags]
    rates = [len(seen) / (last - started) for seen, _, first, last in results if last]
    lost = max(LINES - len(seen) for seen, _, _, _ in results)
    yield {
        "lines": LINES,
        "clients": CLIENTS,
        "run_state": run.state,
        "stored_lines": stored - 1,  # minus the "$ argv" line
        "lines_per_s_min": round(min(rates), 1) if rates else 0,
        "lines_per_s_median": round(sorted(rates)[len(rates) // 2], 1) if rates else 0,
        **{k.replace("_ms", "_lag_ms"): v for k, v in percentiles(lags).items()},
        "lines_lost": lost,
    }
