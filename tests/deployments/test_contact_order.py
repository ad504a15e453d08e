"""Emergency contacts are listed in escalation order (level 1 first) wherever they are shown."""

import re

from django.test import Client

from deployments import services as deployment_services


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_escalation_levels_are_listed_in_order(crew):
    deployment, people = crew
    lead = people["lead"]
    # Role positions: QA Lead 0, DevOps Engineer 1, Product Owner 2 — the order the list used to follow.
    deployment_services.add_contact(deployment, lead, role_name="DevOps Engineer", level=1, name="Devi", email="d@example.com")
    deployment_services.add_contact(deployment, lead, role_name="Product Owner", level=3, name="Pat", email="p@example.com")
    deployment_services.add_contact(deployment, lead, role_name="QA Lead", level=2, name="Quinn", email="q@example.com")
    assert [c.level for c in deployment.contacts.all()] == [1, 2, 3]
    warroom = client_for(lead).get(f"/deployments/{deployment.pk}/").content.decode()
    assert re.findall(r"<li>L(\d) ", warroom) == ["1", "2", "3"]
    people_page = client_for(lead).get(f"/deployments/{deployment.pk}/people/").content.decode()
    assert re.findall(r"<li>Level (\d)", people_page) == ["1", "2", "3"]
