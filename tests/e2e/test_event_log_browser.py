"""The event log in Chromium at a laptop's and a phone's size: nothing runs off the side,
the filter works from the keyboard, and axe finds no serious problem."""

import pytest
from django.db import transaction

from deployments import services
from deployments.events import record_event
from deployments.models import Item
from tests.e2e.test_accessibility import serious_violations

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_event_log_fits_a_laptop_and_a_phone_and_filters_from_the_keyboard(crew, login):
    deployment, people = crew
    item = Item.objects.get(deployment=deployment, text="Time Completed")
    services.update_item(item.pk, people["po"], revision=item.revision, value="<b>10:42</b> =1+1")
    item = Item.objects.get(deployment=deployment, text="Check 1.1")
    services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)
    with transaction.atomic():
        for n in range(120):
            record_event(deployment.pk, actor=None, action="test.note", summary=f"note {n}")

    for name, viewport in (("laptop", {"width": 1280, "height": 800}), ("phone", {"width": 390, "height": 844})):
        page = login("observer", viewport=viewport)
        page.goto(f"/deployments/{deployment.pk}/events/")
        assert page.get_by_role("status").filter(has_text="Chain intact").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: wider than the screen"
        assert serious_violations(page) == []

        # Keyboard only: to the Kind filter, choose, submit.
        page.get_by_label("Kind").focus()
        page.keyboard.press("End")  # the last kind in the list: test.note
        page.get_by_role("button", name="Show events").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**kind=test.note**")
        assert page.get_by_text("Events 1–100 of 120 matching the filter").is_visible()
        page.goto(f"/deployments/{deployment.pk}/events/?since=2000-01-01T00:00")
        assert page.get_by_text("<b>10:42</b> =1+1").first.is_visible()
        page.screenshot(path=f"/tmp/event-log-{name}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: wider than the screen"
