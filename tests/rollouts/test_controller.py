"""The rollout controller against a real metrics endpoint and a real signed webhook router."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone

from approvals import services as approvals
from approvals.models import Decision, Gate, GateRule
from deployments import services as deployment_services
from deployments.models import DeploymentRole, DeploymentState, Event, Item, Step
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from rollouts import controller
from rollouts.models import (
    MetricReading,
    MetricSource,
    MetricSourceKind,
    ReadingStatus,
    RolloutPlan,
    RolloutState,
    Router,
    RouterKind,
)
from rollouts.report_section import readings_per_stage
from warroom.webhooks import BadSignature, verify_signature

SECRET = "router-secret-for-tests"


class World:
    """A metrics endpoint the test controls, and a router that records signed weight changes."""

    def __init__(self):
        self.metrics = {"error_rate": 0.1, "latency": 120}
        self.weights = []
        self.slow = False  # when set, a metrics request waits for ``release`` (a Prometheus under load)
        self.asked = threading.Event()
        self.release = threading.Event()
        self.bad_signatures = 0
        world = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if world.slow:
                    world.asked.set()
                    world.release.wait(15)
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
def world(monkeypatch, db):
    """The test's pretend production, defined as an administrator would: a router and a metric source."""
    monkeypatch.setenv("TEST_ROUTER_SECRET", SECRET)
    w = World()
    router = Router(name="test-router", kind=RouterKind.WEBHOOK, url=w.url + "/route", secret_env="TEST_ROUTER_SECRET")
    router.full_clean()
    router.save()
    source = MetricSource(name="test-metrics", kind=MetricSourceKind.HTTP_JSON, url=w.url + "/m")
    source.full_clean()
    source.save()
    yield w
    w.server.shutdown()


def plan_spec(world, **overrides):
    spec = {
        "strategy": "canary",
        "router": "test-router",
        "sample": 10,
        "stages": [{"weight": 5, "hold": "1m"}, {"weight": 25, "hold": "1m"}, {"weight": 100, "hold": 0}],
        "gates": [
            {
                "name": "error_rate",
                "source": "test-metrics",
                "path": "data.error_rate",
                "comparator": "<",
                "threshold": 1,
                "unit": "%",
                "consecutive_bad": 3,
            },
            {
                "name": "p95_latency_ms",
                "source": "test-metrics",
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
            {"gates": [{"name": "e", "source": "test-metrics", "path": "data.error_rate", "threshold": "1%"}]},
            "gates[1].threshold '1%' is not a number",
        ),
        ({"gates": [{"name": "e", "source": "test-metrics", "threshold": 1}]}, "gates[1].path (text, e.g."),
        ({"router": "no-such-router"}, "router: no router named 'no-such-router' (defined: test-router)"),
        ({"gates": [{"name": "e", "source": "grafana", "path": "x", "threshold": 1}]}, "no metric source named 'grafana'"),
    ],
)
def test_bad_plans_are_refused_when_saved(crew, world, change, message):
    deployment, _ = crew
    with pytest.raises(InvalidChange) as caught:
        controller.define_plan(deployment, plan_spec(world, **change))
    assert message in str(caught.value)
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


# --- a human NO-GO at a gate that guards the rollout takes the traffic back ------------------------


@pytest.fixture
def guarded(crew, world):
    """A rollout on Step 2, at 5 %; the runbook's gate ("Sign-off: Decision", after Step 2 in the
    same phase) guards it, and the QA Lead decides it."""
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    qa = DeploymentRole.objects.get(deployment=deployment, name="QA Lead")
    approvals.configure_gate(gate.pk, people["lead"], voter_role_ids=[qa.pk], rule=GateRule.UNANIMOUS)
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    step = Step.objects.get(deployment=deployment, title="Step 2")
    plan = controller.define_plan(deployment, plan_spec(world), step=step, actor=people["lead"])
    controller.start_rollout(plan.pk, people["lead"])
    assert Clock().tick(plan) == "weight-applied" and world.weights == [5]
    return plan, gate, people


def test_no_go_on_a_gate_guarding_the_rollout_moves_traffic_back(guarded, world):
    plan, gate, people = guarded
    approvals.cast_vote(gate.pk, people["qa"], Decision.NO_GO, reason="canary shows 5xx on checkout")
    plan.refresh_from_db()
    assert world.weights == [5, 0] and world.bad_signatures == 0
    assert plan.state == RolloutState.ABORTED and plan.applied_weight == 0
    assert "NO-GO at “Sign-off: Decision”" in plan.reason and "canary shows 5xx on checkout" in plan.reason
    aborted = Event.objects.get(deployment=plan.deployment, action="rollout.aborted")
    assert aborted.actor_label == "Gate decision"
    plan.deployment.refresh_from_db()
    assert plan.deployment.state == DeploymentState.PAUSED


def test_no_go_on_a_gate_that_does_not_guard_the_rollout_leaves_traffic_alone(guarded, world):
    plan, _, people = guarded
    qa = DeploymentRole.objects.get(deployment=plan.deployment, name="QA Lead")
    other = approvals.add_gate(plan.deployment, people["lead"], title="Marketing ready?", voter_role_ids=[qa.pk])
    approvals.cast_vote(other.pk, people["qa"], Decision.NO_GO, reason="press release late")
    plan.refresh_from_db()
    assert world.weights == [5] and plan.state == RolloutState.RUNNING and plan.applied_weight == 5


def test_rolling_the_deployment_back_takes_the_traffic_back(guarded, world):
    plan, _, people = guarded
    deployment_services.change_state(plan.deployment_id, people["lead"], DeploymentState.ROLLED_BACK, reason="checkout errors")
    plan.refresh_from_db()
    assert world.weights == [5, 0] and plan.state == RolloutState.ABORTED and plan.applied_weight == 0
    with pytest.raises(InvalidChange, match="finished"):
        controller.resume_rollout(plan.pk, people["lead"], reason="try again")
    with pytest.raises(InvalidChange, match="rollout plan no longer changes"):
        controller.define_plan(plan.deployment, plan_spec(world), actor=people["lead"])


def test_the_report_sums_readings_up_per_stage(running, world):
    """Readings at 5 % (0.2, 0.4, then a failing 3.0) and at 25 % (0.1): one row per gate and stage."""
    plan, _ = running
    gate = plan.gates.get(name="error_rate")
    base = timezone.now()
    for n, (stage, weight, value, status) in enumerate(
        [(0, 5, 0.2, "pass"), (0, 5, 0.4, "pass"), (0, 5, 3.0, "fail"), (1, 25, 0.1, "pass"), (1, 25, None, "inconclusive")]
    ):
        MetricReading.objects.create(
            gate=gate, stage_index=stage, weight=weight, value=value, status=status, taken_at=base + timedelta(seconds=n)
        )
    readings = list(MetricReading.objects.filter(gate__plan=plan).order_by("taken_at"))
    rows = readings_per_stage([gate], readings)
    assert rows == [
        ["error_rate", "1 (5 %)", "3", "0.2 %", "3 %", "3 %", "1", "0"],
        ["error_rate", "2 (25 %)", "2", "0.1 %", "0.1 %", "—", "0", "1"],
    ]


@pytest.mark.django_db(transaction=True)
def test_a_slow_metric_source_does_not_hold_up_people_on_the_deployment(running, world):
    """The tick reads its metrics with no lock held: a person's tick goes through meanwhile."""
    plan, people = running
    clock = Clock()
    assert clock.tick(plan) == "weight-applied"
    world.slow = True
    outcome = []

    def tick_in_a_worker():
        try:
            outcome.append(controller.tick(plan.pk, now=clock.now + timedelta(seconds=10)))
        finally:
            connection.close()

    worker = threading.Thread(target=tick_in_a_worker)
    worker.start()
    assert world.asked.wait(10), "the tick never asked the metric source"
    item = Item.objects.filter(deployment=plan.deployment).first()
    deployment_services.update_item(item.pk, people["lead"], revision=item.revision, checked=True)
    assert worker.is_alive()  # the person's change went through while the tick still waited for its metrics
    world.release.set()
    worker.join(20)
    assert outcome == ["sampled"]
    assert MetricReading.objects.filter(gate__plan=plan).count() == 2  # both gates read, once
