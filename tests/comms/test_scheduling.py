"""Scheduled sends store an offset from T-0: they move when T-0 is re-anchored, and the
beat function sends each one once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from comms import services
from comms.models import Delivery, DeliveryState, Message, MessageKind, ScheduledSend, ScheduleState
from deployments import services as deployment_services
from deployments.models import DeploymentState, Event
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from tests.comms.conftest import email_channel, simple_template
from tests.factories import make_deployment, make_user, staff_deployment


@pytest.fixture
def notice(crew):
    """A T-24h maintenance notice on a deployment whose T-0 is 25 hours away: due in 1 hour."""
    deployment, people = crew
    deployment_services.reanchor_t0(deployment.pk, people["lead"], timezone.now() + timedelta(hours=25), reason="set up")
    channel = email_channel(deployment, people["lead"], "all-users@example.com")
    template = simple_template(deployment, people["lead"], [channel], name="Maintenance notice", offset_minutes=-24 * 60)
    return deployment, people, template


def test_a_scheduled_send_follows_t0_when_it_is_reanchored(notice):
    deployment, people, template = notice
    scheduled = services.schedule_template(template.pk, people["lead"])
    deployment.refresh_from_db()
    assert scheduled.due_at() == deployment.planned_t0 - timedelta(hours=24)
    assert services.send_due() == 0

    # The start slips by two hours: the notice moves with it, still in the future.
    deployment_services.reanchor_t0(deployment.pk, people["lead"], deployment.planned_t0 + timedelta(hours=2), reason="slip")
    assert services.send_due(now=timezone.now() + timedelta(hours=2)) == 0

    # T-0 moves forward to 23 h from now: T-24h has come, the notice goes out (once the lead confirms).
    earlier = timezone.now() + timedelta(hours=23)
    with pytest.raises(deployment_services.NeedsConfirmation):
        deployment_services.reanchor_t0(deployment.pk, people["lead"], earlier, reason="earlier")
    deployment_services.reanchor_t0(deployment.pk, people["lead"], earlier, reason="earlier", confirm_due=True)
    assert services.send_due() == 1
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.DONE
    message = Message.objects.get(deployment=deployment)
    assert message.kind == MessageKind.SCHEDULED and message.scheduled_id == scheduled.pk and message.sent_by is None
    assert message.subject == "smartwallet 1.2.0 is live"
    delivery = message.deliveries.get()
    assert delivery.state == DeliveryState.QUEUED and delivery.recipients == ["all-users@example.com"]
    assert Event.objects.filter(deployment=deployment, action="comms.message.queued").count() == 1
    # Nothing is sent twice, however often beat runs.
    assert services.send_due() == 0
    assert services.send_due(now=timezone.now() + timedelta(days=3)) == 0
    assert Message.objects.filter(deployment=deployment).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_a_due_message_once(crew):
    deployment, people = crew
    deployment_services.reanchor_t0(deployment.pk, people["lead"], timezone.now() + timedelta(minutes=10), reason="soon")
    channel = email_channel(deployment, people["lead"], "all-users@example.com")
    template = simple_template(deployment, people["lead"], [channel], offset_minutes=-5)
    services.schedule_template(template.pk, people["lead"])
    later = timezone.now() + timedelta(minutes=6)
    barrier = threading.Barrier(4)
    results = []

    def beat():
        barrier.wait()
        try:
            results.append(services.send_due(now=later))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [0, 0, 0, 1]
    assert Message.objects.filter(deployment=deployment).count() == 1
    assert Delivery.objects.filter(deployment=deployment).count() == 1


def test_scheduling_refuses_what_cannot_work(notice):
    deployment, people, template = notice
    with pytest.raises(PermissionDenied):
        services.schedule_template(template.pk, people["po"])
    services.schedule_template(template.pk, people["lead"])
    with pytest.raises(InvalidChange, match="already scheduled"):
        services.schedule_template(template.pk, people["lead"])
    late = simple_template(deployment, people["lead"], list(template.channels.all()), name="Too late", offset_minutes=-48 * 60)
    with pytest.raises(InvalidChange, match="has already passed"):
        services.schedule_template(late.pk, people["lead"])
    nowhere = simple_template(deployment, people["lead"], [], name="Nowhere", offset_minutes=0)
    with pytest.raises(InvalidChange, match="at least one active channel"):
        services.schedule_template(nowhere.pk, people["lead"])
    manual = simple_template(deployment, people["lead"], list(template.channels.all()), name="By hand")
    with pytest.raises(InvalidChange, match="planned time"):
        services.schedule_template(manual.pk, people["lead"])


def test_moving_the_templates_offset_cancels_its_schedule(notice):
    deployment, people, template = notice
    scheduled = services.schedule_template(template.pk, people["lead"])
    services.save_template(
        deployment,
        people["lead"],
        template_id=template.pk,
        name=template.name,
        subject=template.subject,
        body=template.body,
        offset_minutes=-12 * 60,
        channel_ids=[c.pk for c in template.channels.all()],
    )
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.CANCELLED and "planned time changed" in scheduled.note


def test_an_aborted_deployment_sends_nothing_more(notice):
    deployment, people, template = notice
    scheduled = services.schedule_template(template.pk, people["lead"])
    deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.ABORTED, reason="vendor outage")
    assert services.send_due(now=timezone.now() + timedelta(days=2)) == 0
    scheduled.refresh_from_db()
    assert scheduled.state == ScheduleState.CANCELLED and "aborted" in scheduled.note
    assert not Message.objects.filter(deployment=deployment).exists()


def test_the_lead_cancels_a_scheduled_send(notice):
    deployment, people, template = notice
    scheduled = services.schedule_template(template.pk, people["lead"])
    with pytest.raises(PermissionDenied):
        services.cancel_scheduled(scheduled.pk, people["qa"])
    services.cancel_scheduled(scheduled.pk, people["lead"], reason="announced in the newsletter")
    assert ScheduledSend.objects.get(pk=scheduled.pk).state == ScheduleState.CANCELLED
    assert services.send_due(now=timezone.now() + timedelta(days=2)) == 0


def test_another_deployments_schedule_is_untouched(notice):
    deployment, people, template = notice
    services.schedule_template(template.pk, people["lead"])
    other = make_deployment(lead=make_user("lead"))
    staff_deployment(other, people["lead"])
    assert services.send_due() == 0
    assert not Message.objects.filter(deployment=other).exists()
