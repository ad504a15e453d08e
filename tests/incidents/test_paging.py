"""Who a SEV1 reaches: the deployment's own people when the escalation list reaches nobody,
the holders of a role a contact names, people added while it escalates (once each), the
banner and the lead's notice while nobody can be paged."""

from django.test import Client

from comms import delivery
from comms.models import Delivery, Message, MessageKind
from deployments import services as deployment_services
from deployments.models import Event
from incidents import services
from incidents.models import Page, UpdateKind

NOBODY = "SEV1 open and nobody can be paged: add contacts"


def give_addresses(people, *usernames):
    for username in usernames:
        people[username].email = f"{username}@crew.example"
        people[username].save(update_fields=["email"])


def pages_of(incident):
    return sorted(incident.pages.values_list("level", "contact_name", "contact_email", "reason"))


def page_messages(deployment):
    return Message.objects.filter(deployment=deployment, kind=MessageKind.PAGE).order_by("pk")


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_without_contacts_a_sev1_pages_the_lead_and_the_role_holders_by_e_mail(crew, smtp_settings):
    deployment, people = crew
    give_addresses(people, "lead", "po", "qa", "devops", "dba", "observer")
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")

    # The lead, and everyone holding a role; the observer holds none and is not woken.
    assert pages_of(incident) == [
        (1, "Dana Base", "dba@crew.example", "DBA"),
        (1, "Devi Ops", "devops@crew.example", "DevOps Engineer"),
        (1, "Lena Lead", "lead@crew.example", "lead"),
        (1, "Pat Owner", "po@crew.example", "Product Owner"),
        (1, "Quinn Assurance", "qa@crew.example", "QA Lead"),
    ]
    incident.refresh_from_db()
    assert incident.escalation_level == 1 and incident.next_escalation_at is None  # one level only

    # Through the real delivery path: one e-mail per person, over SMTP.
    [message] = page_messages(deployment)
    for queued in message.deliveries.all():
        assert delivery.attempt_delivery(queued.pk).state == "sent"
    received = sorted(address for m in smtp_settings.messages for address in m["to"])
    assert received == [f"{u}@crew.example" for u in ("dba", "devops", "lead", "po", "qa")]
    assert {m["email"]["Subject"] for m in smtp_settings.messages} == {"[SEV1] INC-1 during Release 1.2: Checkout down"}

    # The log says nobody on the list could be paged, and names who was paged instead.
    told = Event.objects.get(deployment=deployment, action="incident.unpageable")
    assert NOBODY in told.summary and told.actor is None
    paged = Event.objects.get(deployment=deployment, action="incident.paged")
    for name in ("Lena Lead (lead)", "Quinn Assurance (QA Lead)", "Devi Ops (DevOps Engineer)", "Pat Owner", "Dana Base"):
        assert name in paged.summary
    assert "Olli" not in paged.summary
    # Someone was paged, so someone can acknowledge.
    services.acknowledge(incident.pk, people["lead"])


def test_a_contact_naming_a_role_pages_whoever_holds_it_and_nobody_else(crew):
    deployment, people = crew
    give_addresses(people, "lead", "dba", "qa")
    # As an imported runbook writes it: "Level 1: DBA on call", a phone and no address.
    deployment_services.add_contact(deployment, people["lead"], role_name="DBA", level=1, name="DBA on call", phone="+49 30 5")
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Replica lag")
    assert pages_of(incident) == [(1, "DBA on call", "", "DBA"), (1, "Dana Base", "dba@crew.example", "DBA")]
    [queued] = Delivery.objects.filter(deployment=deployment)
    assert queued.recipients == ["dba@crew.example"]
    text = incident.updates.filter(kind=UpdateKind.PAGE).last().text
    assert "DBA on call (DBA), call +49 30 5" in text and "Dana Base (DBA) by e-mail to dba@crew.example" in text
    assert not Event.objects.filter(deployment=deployment, action="incident.unpageable").exists()


def test_a_contact_added_while_it_escalates_is_paged_once_at_the_current_level(crew, settings):
    settings.WARROOM_ESCALATION_WAIT_SECONDS = 600  # no escalation during the test
    deployment, people = crew
    lead = people["lead"]
    deployment_services.add_contact(deployment, lead, role_name=None, level=1, name="Ops desk", email="ops@example.com")
    deployment_services.add_contact(deployment, lead, role_name=None, level=2, name="CTO", email="cto@example.com")
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    assert pages_of(incident) == [(1, "Ops desk", "ops@example.com", "")]

    deployment_services.add_contact(deployment, lead, role_name=None, level=1, name="Night DBA", email="night@example.com")
    deployment_services.add_contact(deployment, lead, role_name=None, level=2, name="VP", email="vp@example.com")
    assert services.escalate_due() == 1
    # The level-1 newcomer now; the level-2 one waits for level 2 like the CTO; Ops desk is not paged again.
    assert pages_of(incident) == [(1, "Night DBA", "night@example.com", ""), (1, "Ops desk", "ops@example.com", "")]
    latest = page_messages(deployment).last()
    assert [d.recipients for d in latest.deliveries.all()] == [["night@example.com"]]
    assert "Night DBA" in Event.objects.filter(action="incident.paged").order_by("seq").last().summary
    assert "Added since the incident opened, paged at level 1: Night DBA" in incident.updates.last().text

    assert services.escalate_due() == 0  # the next beat finds nobody new
    assert page_messages(deployment).count() == 2
    assert Delivery.objects.filter(deployment=deployment, recipients=["ops@example.com"]).count() == 1


def test_a_sev1_nobody_could_be_paged_for_starts_paging_when_a_contact_is_added(crew):
    deployment, people = crew  # no contacts, no addresses: nobody paged at first
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Data loss")
    assert services.escalate_due() == 0 and not incident.pages.exists()
    deployment_services.add_contact(
        deployment, people["lead"], role_name=None, level=2, name="On-call", email="oncall@example.com"
    )
    assert services.escalate_due() == 1
    incident.refresh_from_db()
    assert pages_of(incident) == [(2, "On-call", "oncall@example.com", "")]
    assert incident.escalation_level == 2
    assert services.escalate_due() == 0


def test_people_paged_instead_are_not_paged_again_when_contacts_arrive(crew):
    deployment, people = crew
    give_addresses(people, "lead", "devops")
    incident = services.raise_incident(deployment.pk, people["devops"], severity="sev1", title="Outage")
    assert [p[1] for p in pages_of(incident)] == ["Devi Ops", "Lena Lead"]
    # The lead adds the DevOps role as level 1: its holder was paged already; the desk is new.
    deployment_services.add_contact(
        deployment, people["lead"], role_name="DevOps Engineer", level=1, name="Ops desk", email="desk@example.com"
    )
    assert services.escalate_due() == 1
    assert [p[1] for p in pages_of(incident)] == ["Devi Ops", "Lena Lead", "Ops desk"]
    assert Page.objects.filter(incident=incident, user=people["devops"]).count() == 1


def test_the_banner_and_the_leads_notice_while_nobody_can_be_paged(crew):
    deployment, people = crew
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="<i>Checkout</i> down")
    base = f"/deployments/{deployment.pk}"
    warroom = client_for(people["observer"]).get(f"{base}/").content.decode()
    assert NOBODY in warroom and f'id="unpaged-{incident.pk}"' in warroom
    assert "INC-1: &lt;i&gt;Checkout&lt;/i&gt; down" in warroom and "<i>Checkout" not in warroom
    for path in ("/tv/", "/tv/board/"):
        tv = client_for(people["observer"]).get(f"{base}{path}").content.decode()
        assert NOBODY in tv and 'class="stop-line tv-unpaged"' in tv
    # The lead is told in "Waiting for you"; someone who cannot add contacts is not.
    assert NOBODY in client_for(people["lead"]).get(f"{base}/me/").content.decode()
    assert NOBODY not in client_for(people["qa"]).get(f"{base}/me/").content.decode()

    # Once the escalation list reaches someone, the banner goes.
    deployment_services.add_contact(deployment, people["lead"], role_name=None, level=1, name="Desk", email="desk@example.com")
    services.escalate_due()
    assert 'class="panel unpaged-banner"' not in client_for(people["observer"]).get(f"{base}/").content.decode()
    assert "tv-unpaged" not in client_for(people["observer"]).get(f"{base}/tv/").content.decode()
    assert NOBODY not in client_for(people["lead"]).get(f"{base}/me/").content.decode()


def test_the_banner_names_who_was_paged_instead(crew):
    deployment, people = crew
    give_addresses(people, "lead")
    services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    warroom = client_for(people["qa"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "SEV1 open and no emergency contact can be paged: add contacts" in warroom
    assert "paged the deployment's own people instead: Lena Lead (lead)." in warroom
    # An acknowledged SEV1 has someone on it: no banner.
    incident = deployment.incidents.get()
    services.acknowledge(incident.pk, people["lead"])
    assert "unpaged-banner" not in client_for(people["qa"]).get(f"/deployments/{deployment.pk}/").content.decode()
