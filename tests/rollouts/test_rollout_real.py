"""A canary rollout driven by the real Celery controller (worker + beat), reading a real
Prometheus that scrapes an exporter the test controls, moving traffic through a real nginx."""

import re
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from deployments import services as deployment_services
from deployments.models import DeploymentState
from rollouts import controller
from rollouts.models import MetricSource, MetricSourceKind, RolloutPlan, RolloutState
from tests.conftest import BASE_DIR
from tests.rollouts.real_services import Nginx, Prometheus, Upstream, free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ERROR_RATIO = 'sum(rate(app_requests_total{status="500"}[4s])) / sum(rate(app_requests_total[4s]))'


def _prometheus_source(name: str, url: str) -> MetricSource:
    """What an administrator enters in the admin for a Prometheus server."""
    source = MetricSource(name=name, kind=MetricSourceKind.PROMETHEUS, url=url)
    source.full_clean()
    source.save()
    return source


class Traffic:
    """Keeps request counters moving, like a live service; `failing` makes 30 % of them 500s."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("app_requests", "Requests", ["status"], registry=self.registry)
        self.port = free_port()
        start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.failing = False
        self.stopped = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopped.wait(0.05):
            self.requests.labels(status="200").inc(7)
            self.requests.labels(status="500").inc(3 if self.failing else 0)


def _start_beat(env, tmp_path):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "warroom",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=open(tmp_path / "beat.log", "w"),
        stderr=subprocess.STDOUT,
    )


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def test_canary_aborts_on_prometheus_error_rate_and_nginx_follows(crew, celery_worker, process_env, tmp_path):
    deployment, people = crew
    traffic = Traffic()
    stable, canary = Upstream("stable"), Upstream("canary")
    nginx = Nginx(tmp_path / "nginx", stable.address)
    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{traffic.port}")
    beat = _start_beat(process_env, tmp_path)
    try:
        for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
            deployment_services.change_state(deployment.pk, people["lead"], state)
        plan = controller.define_plan(
            deployment,
            {
                "strategy": "canary",
                "router": nginx.define_router("edge", stable.address, canary.address).name,
                "sample": 1,
                "stages": [{"weight": 5, "hold": 6}, {"weight": 25, "hold": 120}, {"weight": 100, "hold": 0}],
                "gates": [
                    {
                        "name": "error_rate",
                        "source": _prometheus_source("prom", prometheus.url).name,
                        "query": ERROR_RATIO,
                        "comparator": "<",
                        "threshold": 0.05,
                        "consecutive_bad": 2,
                    }
                ],
            },
            actor=people["lead"],
        )
        # Prometheus needs a few scrapes before rate() has an answer: wait for one.
        _wait(lambda: controller.metrics.sample(plan.gates.get()).value is not None, 60, "Prometheus to answer the query")
        controller.start_rollout(plan.pk, people["lead"])

        _wait(lambda: RolloutPlan.objects.get(pk=plan.pk).applied_weight == 5, 30, "5 %")
        assert nginx.split(100) == {"stable": 95, "canary": 5}
        _wait(
            lambda: RolloutPlan.objects.get(pk=plan.pk).applied_weight == 25,
            60,
            lambda: f"25 % (plan is {RolloutPlan.objects.get(pk=plan.pk).state}: {RolloutPlan.objects.get(pk=plan.pk).reason})",
        )
        assert nginx.split(100) == {"stable": 75, "canary": 25}

        traffic.failing = True  # the error counter climbs at 25 %
        plan = _wait(lambda: RolloutPlan.objects.filter(pk=plan.pk, state=RolloutState.ABORTED).first(), 60, "abort")
        assert plan.applied_weight == 0
        assert nginx.split(50) == {"stable": 50}
        # The 4 s rate window straddles the moment errors began, so the ratio is near, not at, 0.3.
        assert re.fullmatch(r"error_rate 0\.[1-3]\d* > 0\.05 for 2 readings at 25 %, \d\d:\d\d UTC", plan.reason), plan.reason
        deployment.refresh_from_db()
        assert deployment.state == DeploymentState.PAUSED
    finally:
        beat.terminate()
        beat.wait(timeout=15)
        traffic.stopped.set()
        for thing in (prometheus, nginx, stable, canary):
            thing.stop()


def test_unreachable_prometheus_is_inconclusive_not_a_pass(crew):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    plan = controller.define_plan(
        deployment,
        {
            "router": {"kind": "manual"},
            "sample": 1,
            "stages": [{"weight": 100, "hold": 0}],
            "gates": [
                {
                    "name": "error_rate",
                    "source": _prometheus_source("nobody-home", f"http://127.0.0.1:{free_port()}").name,
                    "query": ERROR_RATIO,
                    "threshold": 0.05,
                }
            ],
        },
    )
    controller.start_rollout(plan.pk, people["lead"])
    assert controller.tick(plan.pk) == "waiting"
    controller.confirm_weight(plan.pk, people["lead"])
    assert controller.tick(plan.pk) == "inconclusive"
    plan.refresh_from_db()
    assert plan.state == RolloutState.PAUSED and plan.reason.startswith("inconclusive: error_rate: Prometheus unreachable")
