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


def test_after_redis_loses_its_counter_every_later_change_still_appears(crew, login):
    """Redis keeps no data across a restart: the sequence starts low again under a new epoch."""
    deployment, people = crew
    page = login("po")
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    first = Item.objects.get(deployment=deployment, text="Check 1.1")
    services.update_item(first.pk, people["lead"], revision=first.revision, checked=True)
    expect(page.get_by_role("checkbox", name="Check 1.1")).to_be_checked()
    live.redis_client().incr(f"warroom:seq:{deployment.pk}", 70)  # a long-running war room
    other = Item.objects.get(deployment=deployment, text="Check 1.2")
    services.update_item(other.pk, people["lead"], revision=other.revision, checked=True)
    expect(page.get_by_role("checkbox", name="Check 1.2")).to_be_checked()

    live.redis_client().delete(live.EPOCH_KEY, f"warroom:seq:{deployment.pk}")  # what a restart does
    later = ["Check 1.3", "Check 2.1", "Check 2.2", "Check 2.3"]
    for text in later:
        item = Item.objects.get(deployment=deployment, text=text)
        services.update_item(item.pk, people["lead"], revision=item.revision, checked=True)
    for text in later:
        expect(page.get_by_role("checkbox", name=text)).to_be_checked()
    expect(page.locator("#conn-state")).to_have_text("Live")


def test_the_badge_says_live_only_while_messages_really_arrive(crew, login):
    """A socket that stays open but delivers nothing (a proxy, a dead channel layer) is not "Live"."""
    deployment, people = crew
    page = login("po")
    cut = {"on": False}

    def relay(ws):
        server = ws.connect_to_server()
        server.on_message(lambda message: None if cut["on"] else ws.send(message))

    page.route_web_socket("**/ws/**", relay)
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    cut["on"] = True
    expect(page.locator("#conn-state")).to_contain_text("No live updates", timeout=15000)
    # Meanwhile the screen fetches the board by itself: a change still shows.
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    services.update_item(item.pk, people["qa"], revision=item.revision, checked=True)
    expect(page.get_by_role("checkbox", name="Check 2.1")).to_be_checked(timeout=15000)
    cut["on"] = False  # heartbeats flow again
    expect(page.locator("#conn-state")).to_have_text("Live", timeout=15000)
