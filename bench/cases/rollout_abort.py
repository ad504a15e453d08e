"""rollout_abort: a gate's threshold is crossed in the source → how long until traffic is at 0 %.

Real worker and beat (the controller ticks every WARROOM_ROLLOUT_TICK_SECONDS), an HTTP
JSON metrics source and a signed webhook router, both local servers this case controls.
Budget from the issue: one sampling interval plus a second.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.support import celery_beat, celery_worker, make_crew, percentiles
from warroom.webhooks import BadSignature, verify_signature

ROUNDS = 5
SAMPLE_SECONDS = 2
SECRET_ENV = "WARROOM_BENCH_ROUTER_SECRET"  # noqa: S105 (a variable name)


class World:
    def __init__(self, secret: str):
        self.error_rate = 0.1
        self.zero_at = None
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"error_rate": world.error_rate}).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    good = bool(verify_signature(secret, body, self.headers))
                except BadSignature:
                    good = False
                if good and json.loads(body)["weights"]["new"] == 0 and world.zero_at is None:
                    world.zero_at = time.time()
                self.send_response(200 if good else 403)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run():
    from deployments import services
    from deployments.models import DeploymentState
    from rollouts import controller
    from rollouts.models import MetricSource, MetricSourceKind, RolloutPlan, Router, RouterKind

    os.environ.setdefault(SECRET_ENV, "bench-router-secret")
    world = World(os.environ[SECRET_ENV])
    # What an administrator defines once: the router and the metrics the plans name.
    router, _ = Router.objects.update_or_create(
        name="bench-router", defaults={"kind": RouterKind.WEBHOOK, "url": world.url + "/route", "secret_env": SECRET_ENV}
    )
    source, _ = MetricSource.objects.update_or_create(
        name="bench-metrics", defaults={"kind": MetricSourceKind.HTTP_JSON, "url": world.url + "/m"}
    )
    latencies = []
    with celery_worker(name="abortworker"), celery_beat():
        for round_no in range(ROUNDS):
            deployment, lead, _ = make_crew(0, items=10, label=f"abort{int(time.time())}-{round_no}")
            for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
                services.change_state(deployment.pk, lead, state)
            plan = controller.define_plan(
                deployment,
                {
                    "router": router.name,
                    "sample": SAMPLE_SECONDS,
                    "stages": [{"weight": 10, "hold": 3600}, {"weight": 100, "hold": 0}],
                    "gates": [
                        {
                            "name": "error_rate",
                            "source": source.name,
                            "path": "error_rate",
                            "threshold": 1,
                            "unit": "%",
                        }
                    ],
                },
            )
            world.error_rate, world.zero_at = 0.1, None
            controller.start_rollout(plan.pk, lead)
            deadline = time.monotonic() + 30
            while RolloutPlan.objects.get(pk=plan.pk).applied_weight != 10:
                if time.monotonic() > deadline:
                    raise RuntimeError("the rollout never reached 10 %")
                time.sleep(0.05)
            time.sleep(SAMPLE_SECONDS * 0.37 * (round_no + 1) % SAMPLE_SECONDS)  # cross at different phases
            crossed = time.time()
            world.error_rate = 5.0
            while world.zero_at is None:
                if time.time() - crossed > 30:
                    raise RuntimeError("traffic never went back to 0 %")
                time.sleep(0.01)
            latencies.append((world.zero_at - crossed) * 1000)
    world.server.shutdown()
    result = percentiles(latencies)
    from django.conf import settings

    yield {
        "rounds": ROUNDS,
        "sample_s": SAMPLE_SECONDS,
        "tick_s": settings.WARROOM_ROLLOUT_TICK_SECONDS,
        **result,
        "budget_ms": (SAMPLE_SECONDS + 1) * 1000,
        "within_budget": all(v <= (SAMPLE_SECONDS + 1) * 1000 for v in latencies),
    }
