"""The rollout controller against a real metrics endpoint and a real signed webhook router."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from deployments import services as deployment_services
from deployments.models import DeploymentState, Event
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from rollouts import controller
from rollouts.models import ReadingStatus, RolloutPlan, RolloutState
from warroom.webhooks import BadSignature, verify_signature

SECRET = "router-secret-for-tests"


class World:
    """A metrics endpoint the test controls, and a router that records signed weight changes."""

    def __init__(self):
        self.metrics = {"error_rate": 0.1, "latency": 120}
        self.weights = []
        self.bad_signatures = 0
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"data": world.metrics}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verify_signature(SECRET, body, self.headers)
                    signed = True
                except BadSignature:
                    signed = False
                if not signed:
                    world.bad_signatures += 1
                    self.send_response(403)
                else:
                    world.weights.append(json.loads(body)["weights"]["new"])
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("TEST_ROUTER_SECRET", SECRET)
    w = World()
    yield w
    w.server.shutdown()


def plan_spec(world, **overrides):
    spec = {
        "strategy": "canary",
        "router": {"kind": "webhook", "url": world.url + "/route", "secret_env": "TEST_ROUTER_SECRET"},
        "sample": 10,
        "stages": [{"weight": 5, "hold": "1m"}, {"weight": 25, "hold": "1m"}, {"weight": 100, "hold": 0}],
        "gates": [
            {
                "name": "error_rate",
                "source": "http_json",
                "url": world.url + "/m",
                "path": "data.error_rate",
                "comparator": "<",
                "threshold": 1,
                "unit": "%",
                "consecutive_bad": 3,
            },
            {
                "name": "p95_latency_ms",
                "source": "http_json",
                "url": world.url + "/m",
                "path": "data.latency",
                "threshold": 500,
                "unit": "ms",
            },
        ],
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def running(crew, world):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    plan = controller.define_plan(deployment, plan_spec(world), actor=people["lead"])
    controller.start_rollout(plan.pk, people["lead"])
    return plan, people


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def tick(self, plan, seconds=0):
        self.now += timedelta(seconds=seconds)
        return controller.tick(plan.pk, now=self.now)


def test_walks_the_stages_while_gates_are_green(running, world):
    plan, _ = running
    clock = Clock()
    assert clock.tick(plan) == "weight-applied"
    assert world.weights == [5]
    assert clock.tick(plan) == "sampled"
    assert clock.tick(plan, 5) == "holding"  # the next sample is due after 10 s
    for _ in range(6):
        result = clock.tick(plan, 10)
    assert result == "advanced"
    assert clock.tick(plan) == "weight-applied" and world.weights == [5, 25]
    for _ in range(7):
        clock.tick(plan, 10)
    assert world.weights == [5, 25, 100]
    clock.tick(plan, 10)
    plan.refresh_from_db()
    assert plan.state == RolloutState.COMPLETED and world.bad_signatures == 0


def test_red_gate_aborts_by_itself_and_says_why(running, world):
    plan, people = running
    clock = Clock()
    clock.tick(plan)
    for _ in range(7):
        clock.tick(plan, 10)
    clock.tick(plan)  # 25 % applied
    world.metrics["error_rate"] = 3.2
    assert clock.tick(plan, 10) == "sampled"  # 1 bad reading
    assert clock.tick(plan, 10) == "sampled"  # 2
    assert clock.tick(plan, 10) == "aborted"  # 3 in a row
    plan.refresh_from_db()
    assert world.weights[-1] == 0 and plan.applied_weight == 0
    assert plan.state == RolloutState.ABORTED
    assert plan.reason.startswith("error_rate 3.2 % > 1 % for 3 readings at 25 %,")
    assert plan.reason.endswith("UTC")
    plan.deployment.refresh_from_db()
    assert plan.deployment.state == DeploymentState.PAUSED
    assert Event.objects.filter(deployment=plan.deployment, action="rollout.aborted").exists()


def test_a_recovering_metric_does_not_abort(running, world):
    plan, _ = running
    clock = Clock()
    clock.tick(plan)
    world.metrics["error_rate"] = 3
    clock.tick(plan, 10)
    clock.tick(plan, 10)
    world.metrics["error_rate"] = 0.2  # third reading is green: not 3 in a row
    assert clock.tick(plan, 10) == "sampled"
    plan.refresh_from_db()
    assert plan.state == RolloutState.RUNNING


def test_no_data_is_inconclusive_and_pauses_for_the_lead(running, world):
    plan, people = running
    clock = Clock()
    clock.tick(plan)
    world.metrics.pop("latency")
    assert clock.tick(plan, 10) == "inconclusive"
    plan.refresh_from_db()
    assert plan.state == RolloutState.PAUSED
    assert plan.reason == "inconclusive: p95_latency_ms: no value at data.latency"
    assert plan.gates.get(name="p95_latency_ms").readings.last().status == ReadingStatus.INCONCLUSIVE
    world.metrics["latency"] = 100
    controller.resume_rollout(plan.pk, people["lead"], reason="exporter restarted")
    assert clock.tick(plan, 10) == "sampled"


def test_humans_pause_promote_and_abort_with_reasons_and_permission(running, world):
    plan, people = running
    clock = Clock()
    clock.tick(plan)
    with pytest.raises(PermissionDenied):
        controller.pause_rollout(plan.pk, people["po"], reason="x")
    with pytest.raises(InvalidChange, match="Say why"):
        controller.pause_rollout(plan.pk, people["lead"], reason="")
    controller.pause_rollout(plan.pk, people["lead"], reason="waiting for the CDN purge")
    assert clock.tick(plan, 10) == "idle"
    controller.promote_rollout(plan.pk, people["lead"], reason="canary looks fine, purge done")
    assert clock.tick(plan) == "weight-applied" and world.weights[-1] == 25
    controller.abort_rollout(plan.pk, people["lead"], reason="support sees login errors")
    plan.refresh_from_db()
    assert plan.state == RolloutState.ABORTED and world.weights[-1] == 0
    assert "support sees login errors" in plan.reason
    actions = list(
        Event.objects.filter(deployment=plan.deployment, action__startswith="rollout.").values_list("action", flat=True)
    )
    assert actions[-4:] == ["rollout.paused", "rollout.promoted", "rollout.weight", "rollout.aborted"]


def test_manual_router_waits_for_a_person(crew, world):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    plan = controller.define_plan(
        deployment,
        plan_spec(
            world,
            router={"kind": "manual"},
            gates=[{"name": "errors on dashboard", "source": "manual", "threshold": 1, "unit": "%"}],
        ),
    )
    controller.start_rollout(plan.pk, people["lead"])
    clock = Clock()
    assert clock.tick(plan) == "waiting"
    controller.confirm_weight(plan.pk, people["lead"])
    controller.enter_reading(plan.gates.get().pk, people["lead"], value=0.3, note="Grafana errors panel")
    assert clock.tick(plan, 61) == "advanced"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stages": [{"weight": 5}, {"weight": 50}]}, "the last stage must reach 100 % (it ends at 50 %)"),
        ({"stages": [{"weight": 50}, {"weight": 25}, {"weight": 100}]}, "must be more than the stage before"),
        ({"gates": [{"name": "e", "threshold": 1}]}, "gates[1] has no source"),
        (
            {"gates": [{"name": "e", "source": "prometheus", "url": "http://p", "query": "up", "threshold": "1%"}]},
            "gates[1].threshold '1%' is not a number",
        ),
        ({"router": {"kind": "webhook", "url": "http://x", "secret_env": "NOT_SET_ANYWHERE_X"}}, "NOT_SET_ANYWHERE_X is not set"),
    ],
)
def test_bad_plans_are_refused_when_saved(crew, world, change, message):
    deployment, _ = crew
    with pytest.raises(InvalidChange) as caught:
        controller.define_plan(deployment, plan_spec(world, **change))
    assert message in str(caught.value)
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()
