"""The escalation timer for real: Celery beat ticks, a worker escalates and sends the
pages by SMTP to a local server; an acknowledgement in between stops it."""

import subprocess
import sys
import time

import pytest

from deployments import services as deployment_services
from incidents import services
from incidents.models import Incident, Page
from tests.conftest import BASE_DIR, _terminate, start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def beat_and_worker(process_env, smtp_server, tmp_path):
    env = {
        **process_env,
        "WARROOM_ESCALATION_WAIT_SECONDS": "2",
        "WARROOM_ESCALATION_TICK_SECONDS": "0.3",
        "WARROOM_SMTP_HOST": "127.0.0.1",
        "WARROOM_SMTP_PORT": str(smtp_server.port),
    }
    worker = start_worker(env, tmp_path / "worker.log", name="escalationworker")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "warroom", "beat", "--loglevel", "WARNING", "--schedule", str(tmp_path / "beat")],
        cwd=BASE_DIR,
        env=env,
        stdout=open(tmp_path / "beat.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        _terminate(beat)
        _terminate(worker)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_beat_escalates_an_unacknowledged_sev1_and_stops_at_the_acknowledgement(crew, settings, beat_and_worker, smtp_server):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 2
    deployment, people = crew
    lead = people["lead"]
    deployment_services.add_contact(
        deployment, lead, role_name="DevOps Engineer", level=1, name="Devi Ops", email="devi@example.com"
    )
    deployment_services.add_contact(deployment, lead, role_name=None, level=2, name="Lena Lead", email="lena@example.com")
    deployment_services.add_contact(
        deployment, lead, role_name="Product Owner", level=3, name="Pat Owner", email="pat@example.com"
    )
    raised = time.monotonic()
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")

    wait_for(lambda: any("devi@example.com" in m["to"] for m in smtp_server.messages), 20, "the level-1 page e-mail")
    wait_for(lambda: Page.objects.filter(incident=incident, level=2).exists(), 20, "level 2")
    assert time.monotonic() - raised >= 1.9  # not before the wait was over
    wait_for(lambda: any("lena@example.com" in m["to"] for m in smtp_server.messages), 20, "the level-2 page e-mail")
    page_mail = next(m for m in smtp_server.messages if "lena@example.com" in m["to"])
    assert page_mail["email"]["Subject"] == "[SEV1] INC-1 during Release 1.2: Checkout down"

    services.acknowledge(incident.pk, people["devops"])
    time.sleep(3)  # longer than the wait: level 3 would have been paged by now
    assert not Page.objects.filter(incident=incident, level=3).exists()
    assert Incident.objects.get(pk=incident.pk).acknowledged_by == people["devops"]
    assert not any("pat@example.com" in m["to"] for m in smtp_server.messages)


@pytest.fixture
def worker_without_beat(process_env, smtp_server, tmp_path):
    env = {**process_env, "WARROOM_SMTP_HOST": "127.0.0.1", "WARROOM_SMTP_PORT": str(smtp_server.port)}
    worker = start_worker(env, tmp_path / "worker.log", name="contactworker")
    try:
        yield
    finally:
        _terminate(worker)


def test_a_contact_added_while_nobody_could_be_paged_is_paged_at_once_without_waiting_for_beat(
    crew, worker_without_beat, smtp_server
):
    """No beat runs here: only the contact change itself can get the new contact paged."""
    deployment, people = crew  # no contacts, nobody with an address: the SEV1 pages nobody
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    assert not Page.objects.filter(incident=incident).exists()

    deployment_services.add_contact(
        deployment, people["lead"], role_name=None, level=1, name="Night desk", email="night@example.com"
    )
    wait_for(lambda: Page.objects.filter(incident=incident, contact_email="night@example.com").exists(), 30, "the page")
    wait_for(lambda: any("night@example.com" in m["to"] for m in smtp_server.messages), 30, "the e-mail")
    assert Page.objects.filter(incident=incident, contact_email="night@example.com").count() == 1
