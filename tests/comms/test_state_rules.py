"""Scheduled messages follow the deployment's state, not only the clock: a "complete" message
waits (held, with the reason) while the deployment is paused or a SEV1 is open, and goes out
once both hold; a message sent by hand is not sent again by its schedule; moving T-0 so
that messages fall due asks the lead first; the status page tells start, end and state."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.services import cast_vote
from comms import defaults, delivery, services
from comms.models import DeliveryState, Message, MessageKind, MessageTemplate, ScheduleState, SendCondition
from deployments import services as deployment_services
from deployments.models import DeploymentState, Event
from incidents import services as incident_services
from incidents.models import IncidentStatus
from tests.comms.conftest import email_channel, simple_template, webhook_channel
from tests.factories import make_user, make_version, release_manager, staff_deployment

GO_LIVE_SUBJECT = "System Maintenance Complete - smartwallet 1.2.0 Now Available"


def client_for(user, *, htmx=False):
    client = Client(HTTP_HX_REQUEST="true") if htmx else Client()
    client.force_login(user)
    return client


@pytest.fixture
def go_live(crew):
    """The runbook's own templates on a deployment whose T-0 was an hour ago; the go-live
    message (T+2h05) is scheduled, due 65 minutes from now."""
    deployment, people = crew
    deployment_services.reanchor_t0(deployment.pk, people["lead"], timezone.now() - timedelta(hours=1), reason="tonight")
    defaults.add_runbook_templates(deployment, people["lead"], users_address="all-users@example.com")
    template = MessageTemplate.objects.get(deployment=deployment, name="Go-live notification")
    scheduled = services.schedule_template(template.pk, people["lead"])
    return deployment, people, template, scheduled


def test_the_runbook_templates_get_rules_that_fit_their_kind(go_live):
    deployment, _, template, _ = go_live
    rules = {t.name: (t.send_states, t.send_condition) for t in MessageTemplate.objects.filter(deployment=deployment)}
    assert rules["Go-live notification"] == (["completed"], SendCondition.NO_OPEN_SEV1)
    assert rules["Deployment starting"] == (["in_progress", "paused"], SendCondition.ALWAYS)
    assert rules["Rollback / extended maintenance"] == (["rolled_back"], SendCondition.ALWAYS)
    assert rules["Maintenance notice"] == (["draft", "scheduled", "in_progress", "paused"], SendCondition.ALWAYS)


def test_a_paused_deployment_with_an_open_sev1_holds_the_complete_message_until_both_clear(go_live):
    deployment, people, template, scheduled = go_live
    lead = people["lead"]
    deployment_services.change_state(deployment.pk, lead, "scheduled")
    deployment_services.change_state(deployment.pk, lead, "in_progress")
    incident = incident_services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Payments fail")
    cast_vote(incident.rollback_gate_id, people["po"], "no_go", reason="roll back now")
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.PAUSED

    # T-0 moves two hours earlier: its time has passed. The lead is told it falls due, held.
    earlier = timezone.now() - timedelta(hours=3)
    with pytest.raises(deployment_services.NeedsConfirmation) as asked:
        deployment_services.reanchor_t0(deployment.pk, lead, earlier, reason="we started earlier")
    assert asked.value.consequences == [
        "“Go-live notification” (T+2h05) to All users: due at once but held "
        "(the deployment is paused; sends when it is completed)"
    ]
    deployment_services.reanchor_t0(deployment.pk, lead, earlier, reason="we started earlier", confirm_due=True)

    # Beat runs, and runs again: nothing goes out, it is held with the reason in words.
    after_its_time = timezone.now() + timedelta(minutes=1)
    assert services.send_due() == 0
    assert services.send_due(now=after_its_time) == 0
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.PENDING
    assert scheduled.held_reason == "the deployment is paused; sends when it is completed"
    assert not Message.objects.filter(deployment=deployment).exists()
    held_events = Event.objects.filter(deployment=deployment, action="comms.held")
    assert list(held_events.values_list("summary", flat=True)) == [
        "Scheduled “Go-live notification” is due but held: the deployment is paused; sends when it is completed"
    ]

    # The comms page and the war room's panel say so.
    page = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/comms/").content.decode()
    assert "Held:</strong> the deployment is paused; sends when it is completed" in page
    board = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "Held</span> <small>the deployment is paused; sends when it is completed</small>" in board

    # Completed, but the SEV1 is still open: still held, now for that reason.
    deployment_services.change_state(deployment.pk, lead, "in_progress", reason="rollback not needed after all")
    deployment_services.change_state(deployment.pk, lead, "completed", override_reason="fixed forward")
    assert services.send_due(now=after_its_time) == 0
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.PENDING
    assert scheduled.held_reason == "INC-1 (SEV1) is open; sends when no SEV1 incident is open"

    # The incident is resolved: it goes out, once.
    incident_services.update_incident(incident.pk, people["qa"], text="Fixed forward", status=IncidentStatus.RESOLVED)
    assert services.send_due(now=after_its_time) == 1
    assert services.send_due(now=after_its_time + timedelta(hours=1)) == 0
    [message] = Message.objects.filter(deployment=deployment)
    assert message.kind == MessageKind.SCHEDULED and message.subject == GO_LIVE_SUBJECT
    assert message.deliveries.get().recipients == ["all-users@example.com"]
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.DONE and scheduled.held_reason == ""
    assert "held from" in scheduled.note and "INC-1 (SEV1) is open" in scheduled.note


def test_a_message_the_deployments_end_rules_out_is_cancelled_saying_why(go_live):
    deployment, people, _, scheduled = go_live
    lead = people["lead"]
    deployment_services.change_state(deployment.pk, lead, "scheduled")
    deployment_services.change_state(deployment.pk, lead, "in_progress")
    deployment_services.change_state(deployment.pk, lead, "rolled_back", reason="smoke tests failed")

    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.CANCELLED
    why = "the deployment was rolled back; “Go-live notification” goes out only when it is completed"
    assert scheduled.note == why
    assert Event.objects.filter(
        deployment=deployment, action="comms.unscheduled", summary=f"Scheduled “Go-live notification” not sent: {why}"
    ).exists()
    assert services.send_due(now=timezone.now() + timedelta(days=1)) == 0
    assert not Message.objects.filter(deployment=deployment).exists()


def test_sending_by_hand_settles_the_scheduled_twin(crew, smtp_settings, webhook_server):
    deployment, people = crew
    lead = people["lead"]
    users = email_channel(deployment, lead, "a@example.com", "b@example.com")
    chat = webhook_channel(deployment, lead, webhook_server().url)
    template = simple_template(deployment, lead, [users], name="Maintenance started", offset_minutes=10)
    scheduled = services.schedule_template(template.pk, lead)

    message = services.send_template(template.pk, lead)
    scheduled.refresh_from_db()
    name = lead.get_full_name()
    assert scheduled.state == ScheduleState.BY_HAND and scheduled.note.startswith(f"sent by hand by {name} at ")
    assert Event.objects.filter(
        deployment=deployment,
        action="comms.settled",
        summary=f"Scheduled “Maintenance started” (T+10m) will not go out: {name} sent it by hand",
    ).exists()
    # The send names its audience: the channel, its kind and size, not its addresses' owners' secrets.
    queued = Event.objects.get(deployment=deployment, action="comms.message.queued")
    assert queued.summary == ("Sent by hand: “smartwallet 1.2.0 is live” → Users (e-mail, 2 recipients) — 2 e-mail addresses")

    # Its time comes and goes: beat sends nothing more; the users got exactly one e-mail.
    assert services.send_due(now=timezone.now() + timedelta(hours=5)) == 0
    assert delivery.attempt_delivery(message.deliveries.get().pk).state == "sent"
    assert [sorted(m["to"]) for m in smtp_settings.messages] == [["a@example.com", "b@example.com"]]
    assert Message.objects.filter(deployment=deployment).count() == 1
    # A webhook channel is named by host only (its path is the secret).
    other = simple_template(deployment, lead, [chat], name="Chat note")
    services.send_template(other.pk, lead)
    summary = Event.objects.filter(deployment=deployment, action="comms.message.queued").order_by("-seq").first().summary
    assert "Team chat (webhook http://127.0.0.1:" in summary and "secret-path" not in summary and "1 webhook" in summary


def test_moving_t0_so_messages_fall_due_asks_the_lead_first_and_lists_them(crew):
    deployment, people = crew
    lead = people["lead"]
    channel = email_channel(deployment, lead, "all-users@example.com")
    notice = simple_template(deployment, lead, [channel], name="Maintenance notice", offset_minutes=-30)
    later = simple_template(deployment, lead, [channel], name="Wrap-up", offset_minutes=600)
    services.schedule_template(notice.pk, lead)
    services.schedule_template(later.pk, lead)
    deployment.refresh_from_db()
    old_t0 = deployment.planned_t0
    zone = zoneinfo.ZoneInfo(deployment.timezone_name)
    new_t0 = (timezone.now() + timedelta(minutes=10)).astimezone(zone).replace(second=0, microsecond=0)
    form = {"t0": new_t0.strftime("%Y-%m-%dT%H:%M"), "timezone": deployment.timezone_name, "reason": "start earlier"}
    client = client_for(lead, htmx=True)

    asked = client.post(f"/deployments/{deployment.pk}/t0/", form)
    assert asked.status_code == 200
    body = asked.content.decode()
    assert "sets off at once" in body
    assert "“Maintenance notice” (T-30m) to Users: goes out at once" in body
    assert "Wrap-up" not in body  # still in the future after the move
    assert 'name="confirm_due"' in body
    deployment.refresh_from_db()
    assert deployment.planned_t0 == old_t0  # nothing moved without the lead's yes
    assert services.send_due() == 0

    done = client.post(f"/deployments/{deployment.pk}/t0/", {**form, "confirm_due": "1"})
    assert done.status_code == 204
    deployment.refresh_from_db()
    assert deployment.planned_t0 == new_t0
    event = Event.objects.filter(deployment=deployment, action="deployment.reanchored").order_by("-seq").first()
    assert "confirmed, at once: “Maintenance notice” (T-30m) to Users: goes out at once" in event.summary
    assert services.send_due() == 1
    assert list(Message.objects.filter(deployment=deployment).values_list("template__name", flat=True)) == ["Maintenance notice"]


def test_status_page_tells_start_end_state_and_last_update(db, monkeypatch):
    lead = release_manager(make_user("lead"))
    t0 = datetime(2030, 1, 15, 20, 0, tzinfo=UTC)  # 21:00 CET in Berlin
    deployment = deployment_services.create_deployment(
        make_version(),
        lead=lead,
        name="Release 1.2",
        service="smartwallet",
        version_label="1.2.0",
        environment="production",
        planned_t0=t0,
        timezone_name="Europe/Berlin",
        window_start=t0,
        window_end=t0 + timedelta(hours=2),
    )
    staff_deployment(deployment, lead)
    page = services.set_status_page(deployment, lead, "enable")
    url = f"/status/{page.token}/"

    before = Client().get(url).content.decode()
    assert "Planned to start Tue 15 Jan 2030, 21:00 CET." in before
    assert "<dt>Expected end</dt><dd>Tue 15 Jan 2030, 23:00 CET</dd>" in before
    assert "Times in Europe/Berlin" in before

    # The work starts at 21:03 and ends at 22:47 Berlin time: distinct minutes, so each line
    # must show its own moment.
    moment = {"now": datetime(2030, 1, 15, 20, 3, tzinfo=UTC)}
    monkeypatch.setattr(timezone, "now", lambda: moment["now"])
    deployment_services.change_state(deployment.pk, lead, "scheduled")
    deployment_services.change_state(deployment.pk, lead, "in_progress")
    during = Client().get(url).content.decode()
    assert "In progress since Tue 15 Jan 2030, 21:03 CET." in during
    assert "Starting" not in during and "Planned to start" not in during
    assert "<dt>Expected end</dt><dd>Tue 15 Jan 2030, 23:00 CET</dd>" in during

    moment["now"] = datetime(2030, 1, 15, 21, 47, tzinfo=UTC)
    deployment_services.change_state(deployment.pk, lead, "completed", override_reason="checked by hand")
    after = Client().get(url).content.decode()
    assert "Completed at Tue 15 Jan 2030, 22:47 CET." in after
    assert "<dt>Ended</dt><dd>Tue 15 Jan 2030, 22:47 CET</dd>" in after
    assert "<dt>Planned end</dt><dd>Tue 15 Jan 2030, 23:00 CET</dd>" in after
    assert "Last updated Tue 15 Jan 2030, 22:47 CET (Europe/Berlin)" in after
    assert "Starting" not in after and "In progress since" not in after


def test_console_mail_says_it_was_only_written_to_the_console(crew, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "ops@example.com")
    message = services.send_template(simple_template(deployment, people["lead"], [channel]).pk, people["lead"])
    queued = message.deliveries.get()
    assert delivery.attempt_delivery(queued.pk).state == "sent"
    queued.refresh_from_db()
    assert queued.state == DeliveryState.SENT
    assert queued.result == "written to the console (no mail server configured; not sent) for 1 recipient(s)"
    assert "accepted" not in queued.result and "localhost" not in queued.result


def test_the_incident_alert_preview_shows_a_labelled_sample_incident(crew):
    deployment, people = crew
    defaults.add_runbook_templates(deployment, people["lead"])
    alert = MessageTemplate.objects.get(deployment=deployment, name="Incident alert")
    body = client_for(people["lead"]).get(f"/deployments/{deployment.pk}/comms/templates/{alert.pk}/preview/").content.decode()
    assert "Shown with a sample incident" in body
    subject = "[SEV1] INC-SAMPLE during Release 1.2: Sample incident (preview only): checkout returns errors"
    assert f"<strong>Subject:</strong> {subject}" in body
    assert "Impact: Sample impact: some users cannot pay" in body and "Status: Investigating (sample)" in body
    assert "[] " not in body and "Status: \n" not in body
