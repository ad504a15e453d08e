"""Incidents: raising, the SEV1 rollback gate, paging and escalation, acknowledgement, permissions."""

import threading
import time

import pytest
from django.db import connection

from approvals.models import GateRule, GateState
from approvals.services import cast_vote
from checklists.models import TemplateRole
from comms.models import Delivery, Message, MessageKind, Transport, WebhookEndpoint
from comms.services import save_channel
from deployments import services as deployment_services
from deployments.models import Event
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from incidents import services
from incidents.models import Incident, IncidentStatus, Page, Severity, UpdateKind
from tests.factories import make_deployment, make_user, make_version, staff_deployment


@pytest.fixture
def contacts(crew):
    """The runbook's escalation path: DevOps (1), lead developer (2), product owner (3)."""
    deployment, people = crew
    lead = people["lead"]
    deployment_services.add_contact(
        deployment, lead, role_name="DevOps Engineer", level=1, name="Devi Ops", email="devi@example.com"
    )
    deployment_services.add_contact(
        deployment, lead, role_name=None, level=2, name="Lena Lead", phone="+49 30 1234", email="lena@example.com"
    )
    deployment_services.add_contact(deployment, lead, role_name="Product Owner", level=3, name="Pat Owner", phone="+49 30 9876")
    return deployment, people


def test_a_sev3_is_recorded_without_gate_or_pages(crew):
    deployment, people = crew
    incident = services.raise_incident(
        deployment.pk,
        people["qa"],
        severity="sev3",
        title="Button misaligned on Safari",
        impact="cosmetic",
        description="see ticket",
    )
    assert (incident.number, incident.status, incident.rollback_gate) == (1, IncidentStatus.INVESTIGATING, None)
    assert list(incident.updates.values_list("kind", flat=True)) == [UpdateKind.RAISED]
    assert not incident.pages.exists() and incident.next_escalation_at is None
    event = Event.objects.get(deployment=deployment, action="incident.raised")
    assert event.actor == people["qa"] and "INC-1 raised (SEV3)" in event.summary
    assert services.raise_incident(deployment.pk, people["devops"], severity="sev4", title="Typo").number == 2


def test_a_sev1_opens_a_rollback_gate_decided_by_the_product_owner_and_pages_level_one(contacts, settings):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 300
    deployment, people = contacts
    incident = services.raise_incident(
        deployment.pk, people["qa"], severity=Severity.SEV1, title="Payments fail", impact="30 % of checkouts"
    )
    gate = incident.rollback_gate
    assert gate is not None and gate.state == GateState.OPEN and gate.title.startswith("Roll back? SEV1 INC-1: Payments fail")
    assert gate.rule == GateRule.DECIDER and gate.decider_role.name == "Product Owner"
    assert set(gate.voter_roles.values_list("name", flat=True)) == {"QA Lead", "DevOps Engineer", "Product Owner", "DBA"}

    [page] = incident.pages.all()
    assert (page.level, page.contact_name) == (1, "Devi Ops")
    assert incident.escalation_level == 1 and incident.next_escalation_at is not None
    assert 299 <= (incident.next_escalation_at - incident.raised_at).total_seconds() <= 301
    message = Message.objects.get(deployment=deployment, kind=MessageKind.PAGE)
    assert message.subject == "[SEV1] INC-1 during Release 1.2: Payments fail"
    assert "Acknowledge in the war room: http" in message.text and f"#incident-{incident.pk}" in message.text
    [delivery] = message.deliveries.all()
    assert (delivery.transport, delivery.recipients) == (Transport.EMAIL, ["devi@example.com"])
    timeline = list(incident.updates.values_list("kind", "text"))
    assert [k for k, _ in timeline] == [UpdateKind.RAISED, UpdateKind.GATE, UpdateKind.PAGE]
    assert "Product Owner decides" in timeline[1][1] and "Next level in 5 min" in timeline[2][1]
    # The product owner's NO-GO on the gate pauses a running deployment (approvals' rule).

    deployment_services.change_state(deployment.pk, people["lead"], "scheduled")
    deployment_services.change_state(deployment.pk, people["lead"], "in_progress")
    cast_vote(gate.pk, people["po"], "no_go", reason="roll back now")
    deployment.refresh_from_db()
    assert deployment.state == "paused"


def test_without_a_product_owner_the_rollback_gate_is_unanimous(db):
    version = make_version()
    TemplateRole.objects.filter(version=version, name="Product Owner").update(name="Business Owner")
    lead = make_user("lead")
    deployment = make_deployment(lead=lead, version=version)
    qa = make_user("qa")
    deployment_services.set_participant(deployment, lead, qa, role_names=["QA Lead"])
    incident = services.raise_incident(deployment.pk, qa, severity="sev1", title="Data loss")
    assert incident.rollback_gate.rule == GateRule.UNANIMOUS
    # Raised by QA; Warroom opens the vote itself and the log says why, not in anyone's name.
    event = Event.objects.get(deployment=deployment, action="gate.added")
    assert event.actor is None and event.actor_label == f"Incident INC-{incident.number} (SEV1)"


def test_pages_also_go_to_channels_that_carry_them(contacts):
    deployment, people = contacts
    WebhookEndpoint.objects.create(name="on-call-chat", url="https://chat.example/hook")  # an administrator's
    save_channel(
        deployment, people["lead"], name="On-call chat", transport="webhook", endpoint="on-call-chat", carries_pages=True
    )
    save_channel(deployment, people["lead"], name="Users", transport="email", recipients="all@example.com")
    services.raise_incident(deployment.pk, people["dba"], severity="sev1", title="Replica corrupt")
    labels = sorted(Delivery.objects.filter(deployment=deployment).values_list("target_label", flat=True))
    assert labels == ["Devi Ops <devi@example.com>", "On-call chat (https://chat.example/…)"]


def test_escalation_walks_the_levels_until_someone_acknowledges(contacts, settings):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 1
    deployment, people = contacts
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    assert services.escalate_due() == 0  # level 1 has its minute (here: second)
    time.sleep(1.1)
    assert services.escalate_due() == 1
    incident.refresh_from_db()
    assert incident.escalation_level == 2
    assert list(Page.objects.filter(incident=incident).values_list("level", "contact_name")) == [
        (1, "Devi Ops"),
        (2, "Lena Lead"),
    ]
    assert services.escalate_due() == 0  # level 2 just started waiting

    services.acknowledge(incident.pk, people["devops"])
    time.sleep(1.1)
    assert services.escalate_due() == 0
    incident.refresh_from_db()
    assert incident.acknowledged_by == people["devops"] and incident.next_escalation_at is None
    assert not Page.objects.filter(incident=incident, level=3).exists()
    kinds = list(incident.updates.values_list("kind", flat=True))
    assert kinds == [UpdateKind.RAISED, UpdateKind.GATE, UpdateKind.PAGE, UpdateKind.ESCALATION, UpdateKind.PAGE, UpdateKind.ACK]
    actions = set(Event.objects.filter(deployment=deployment, action__startswith="incident.").values_list("action", flat=True))
    assert {"incident.raised", "incident.paged", "incident.escalated", "incident.acknowledged"} <= actions
    with pytest.raises(InvalidChange, match="Already acknowledged by Devi Ops"):
        services.acknowledge(incident.pk, people["qa"])


def test_the_last_level_stops_the_timer_and_a_phone_only_contact_is_named(contacts, settings):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 1
    deployment, people = contacts
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    for _ in range(2):
        time.sleep(1.05)
        assert services.escalate_due() == 1
    incident.refresh_from_db()
    assert incident.escalation_level == 3 and incident.next_escalation_at is None
    last = incident.updates.filter(kind=UpdateKind.PAGE).last().text
    assert "Pat Owner (Product Owner), call +49 30 9876" in last and "This is the last level." in last
    time.sleep(1.05)
    assert services.escalate_due() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_beats_escalate_once(contacts, settings):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 1
    deployment, people = contacts
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    time.sleep(1.1)
    barrier, results = threading.Barrier(3), []

    def beat():
        barrier.wait()
        try:
            results.append(services.escalate_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [0, 0, 1]
    assert Page.objects.filter(incident=incident, level=2).count() == 1


def test_resolving_stops_escalation_and_upgrading_to_sev1_starts_it(contacts, settings):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 1
    deployment, people = contacts
    incident = services.raise_incident(deployment.pk, people["devops"], severity="sev2", title="Slow reports")
    assert incident.rollback_gate is None and not incident.pages.exists()
    services.update_incident(incident.pk, people["devops"], text="p95 at 4 s and climbing", severity="sev1")
    incident.refresh_from_db()
    assert incident.rollback_gate is not None and incident.escalation_level == 1
    services.update_incident(incident.pk, people["lead"], text="index rebuilt", status="resolved")
    incident.refresh_from_db()
    assert incident.resolved_at and incident.next_escalation_at is None
    time.sleep(1.1)
    assert services.escalate_due() == 0
    texts = list(incident.updates.values_list("text", flat=True))
    assert "Severity SEV2 → SEV1. p95 at 4 s and climbing" in texts
    assert "Status Investigating → Resolved. index rebuilt" in texts


def test_without_contacts_or_addresses_nobody_is_paged_and_the_timeline_says_so(crew):
    deployment, people = crew  # nobody in the crew has an e-mail address; the observer holds no role
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Outage")
    assert incident.next_escalation_at is None and not incident.pages.exists()
    told, nobody = incident.updates.filter(kind=UpdateKind.PAGE).values_list("text", flat=True)
    assert "No emergency contact can be paged by e-mail" in told and "Lead: add contacts under People" in told
    assert nobody.startswith("SEV1 open and nobody can be paged: add contacts.")
    # the lead first, then by username: dba, devops, po, qa
    assert "No e-mail address for Lena Lead, Dana Base, Devi Ops, Pat Owner, Quinn Assurance: not paged." in nobody
    with pytest.raises(InvalidChange, match="nothing to acknowledge"):
        services.acknowledge(incident.pk, people["qa"])


@pytest.mark.parametrize(
    ("persona", "outcome"),
    [
        ("lead", None),
        ("po", None),
        ("qa", None),
        ("devops", None),
        ("dba", None),
        ("observer", PermissionDenied),
        ("outsider", Incident.DoesNotExist),
    ],
)
def test_who_may_raise(crew, persona, outcome):
    deployment, people = crew
    if outcome is None:
        assert services.raise_incident(deployment.pk, people[persona], severity="sev4", title="Typo").number == 1
    else:
        with pytest.raises(outcome):
            services.raise_incident(deployment.pk, people[persona], severity="sev4", title="Typo")
        assert not Incident.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"severity": "sev9", "title": "x"}, "Choose a severity"),
        ({"severity": "sev2", "title": "   "}, "short title"),
        ({"severity": "sev2", "title": "x" * 201}, "too long"),
        ({"severity": "sev2", "title": "x", "impact": "y" * 5001}, "limited to 5,000"),
    ],
)
def test_bad_incidents_are_refused(crew, kwargs, message):
    deployment, people = crew
    with pytest.raises(InvalidChange, match=message):
        services.raise_incident(deployment.pk, people["qa"], **kwargs)
    assert not Incident.objects.exists()


def test_bad_updates_are_refused(crew):
    deployment, people = crew
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev3", title="x")
    with pytest.raises(InvalidChange, match="Write an update"):
        services.update_incident(incident.pk, people["qa"], text="  ")
    with pytest.raises(InvalidChange, match="Status is"):
        services.update_incident(incident.pk, people["qa"], text="x", status="panicking")
    with pytest.raises(PermissionDenied):
        services.update_incident(incident.pk, people["observer"], text="I think it's fine")
    other = make_deployment(lead=people["lead"])
    staff_deployment(other, people["lead"])
    with pytest.raises(Incident.DoesNotExist):
        services.update_incident(incident.pk, people["outsider"], text="x")
