"""The demo seed gives every sign-off the runbook asks for a holder, and everyone an address to page."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from deployments import services
from deployments.models import Deployment, Participant
from reports.services import sign_off
from reports.signoffs import requested_roles

PASSWORD = "demo-pass-123"


@pytest.mark.django_db
def test_the_demo_lead_holds_lead_developer_and_can_sign_off(capsys):
    call_command("seed_demo", "--password", PASSWORD)
    deployment = Deployment.objects.get()
    lead = get_user_model().objects.get(username="lead")
    me = Participant.objects.get(deployment=deployment, user=lead)
    assert me.is_lead and list(me.roles.values_list("name", flat=True)) == ["Lead Developer"]
    # Every sign-off the runbook asks for has someone holding its role.
    held = set(Participant.objects.filter(deployment=deployment).values_list("roles__name", flat=True))
    assert {role.name for role in requested_roles(deployment)} <= held
    assert all(u.email == f"{u.username}@example.com" for u in get_user_model().objects.all())

    # A demo seeded before this change is mended by the next run; a run after that changes nothing.
    capsys.readouterr()
    me.roles.clear()
    call_command("seed_demo", "--password", PASSWORD)
    call_command("seed_demo", "--password", PASSWORD)
    assert capsys.readouterr().out.count("The demo lead now holds: Lead Developer") == 1
    assert list(me.roles.values_list("name", flat=True)) == ["Lead Developer"]

    services.change_state(deployment.pk, lead, "aborted", reason="demo walk-through")
    signed = sign_off(
        deployment.pk, lead, role_name="Lead Developer", outcome="rolled_back", statement="Stopped on purpose", password=PASSWORD
    )
    assert (signed.role.name, signed.signer_name) == ("Lead Developer", "Lena Lead")
