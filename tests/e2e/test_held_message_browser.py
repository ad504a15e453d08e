"""A paused deployment holds its "complete" message: the lead moves T-0 earlier, is asked
first (the list says the go-live message falls due but is held), and the comms page and the
war room show it held, with the reason in words."""

import zoneinfo
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from comms import defaults, services
from comms.models import Message, MessageTemplate, ScheduledSend, ScheduleState
from deployments import services as deployment_services

pytestmark = pytest.mark.django_db(transaction=True)

REASON = "the deployment is paused; sends when it is completed"


def test_a_held_message_shows_its_reason_on_the_comms_page(crew, login):
    deployment, people = crew
    lead = people["lead"]
    deployment_services.reanchor_t0(deployment.pk, lead, timezone.now() - timedelta(hours=1), reason="tonight")
    defaults.add_runbook_templates(deployment, lead, users_address="all-users@example.com")
    go_live = MessageTemplate.objects.get(deployment=deployment, name="Go-live notification")
    services.schedule_template(go_live.pk, lead)  # T+2h05: due in 65 minutes
    deployment_services.change_state(deployment.pk, lead, "scheduled")
    deployment_services.change_state(deployment.pk, lead, "in_progress")
    deployment_services.change_state(deployment.pk, lead, "paused", reason="two SEV1s open")

    page = login("lead")
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    page.get_by_text("Re-anchor T-0").click()
    earlier = (timezone.now() - timedelta(hours=3)).astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    page.locator("#new-t0").fill(earlier.strftime("%Y-%m-%dT%H:%M"))
    page.locator("#t0-reason").fill("we started earlier")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Move T-0").click()

    # Asked first, with the list: nothing has moved yet.
    confirm = page.locator("#reanchor-confirm")
    expect(confirm).to_contain_text("sets off at once")
    expect(confirm).to_contain_text(f"“Go-live notification” (T+2h05) to All users: due at once but held ({REASON})")
    confirm.get_by_label("Move T-0 and let these go out now").check()
    confirm.get_by_role("button", name="Move T-0").click()
    expect(page.locator("#wr-events")).to_contain_text("we started earlier (confirmed, at once: “Go-live notification”")

    assert services.send_due() == 0  # beat: due, but held
    assert not Message.objects.filter(deployment=deployment).exists()
    assert ScheduledSend.objects.get(template=go_live).state == ScheduleState.PENDING
    # The war room's panel gets the hold by push, the comms page shows it with the reason.
    expect(page.locator("#wr-comms .comm-held")).to_contain_text("Go-live notification T+2h05")
    expect(page.locator("#wr-comms .comm-held")).to_contain_text(REASON)

    page.goto(f"/deployments/{deployment.pk}/comms/")
    card = page.locator("#template-" + str(go_live.pk))
    expect(card.locator(".comm-held")).to_contain_text(f"Held: {REASON}. (Due since")
    expect(card).to_contain_text("A scheduled send goes out when the deployment is completed, and no open SEV1 incident.")
    expect(page.locator("#sch-title + table")).to_contain_text(f"Held {REASON}")
    page.screenshot(path="/tmp/held-message.png", full_page=True)
    # The rule is the lead's to change, in the template's form.
    card.get_by_text("Edit “Go-live notification”").click()
    expect(card.get_by_role("checkbox", name="completed")).to_be_checked()
    expect(card.get_by_role("checkbox", name="paused")).not_to_be_checked()
    expect(card.locator("select[name=send_condition]")).to_have_value("no_open_sev1")
    card.screenshot(path="/tmp/held-message-form.png")
