"""A dropped or gappy connection never leaves a stale screen."""

import pytest
from playwright.sync_api import expect

from deployments import live, services
from deployments.models import Item

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_gap_in_the_sequence_makes_the_screen_refetch_the_board(crew, login):
    deployment, people = crew
    page = login("po")
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    # A change whose push this screen never gets (as if lost on the way) ...
    live.redis_client().incr(f"warroom:seq:{deployment.pk}", 3)
    Item.objects.filter(pk=item.pk).update(checked=True, revision=item.revision + 1)  # what the lost push carried
    # ... then the next push arrives with a gap in its number: the page re-fetches everything.
    with page.expect_request(lambda r: r.url.endswith(f"/deployments/{deployment.pk}/board/")):
        other = Item.objects.get(deployment=deployment, text="Check 2.2")
        services.update_item(other.pk, people["qa"], revision=other.revision, checked=True)
    expect(page.get_by_role("checkbox", name="Check 2.1")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Check 2.2")).to_be_checked()


def test_without_a_websocket_the_page_polls_and_still_updates(crew, login, browser, asgi_server):
    deployment, people = crew
    page = login("po")
    page.context.route_web_socket("**/ws/**", lambda ws: ws.close())  # a proxy that drops websockets
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_contain_text("updating every few seconds", timeout=15000)
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    services.update_item(item.pk, people["qa"], revision=item.revision, checked=True)
    expect(page.get_by_role("checkbox", name="Check 2.1")).to_be_checked(timeout=15000)
