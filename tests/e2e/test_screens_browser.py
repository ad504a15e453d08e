"""The screens people look at: the TV view on a wall, the phone view of the person with a
decision, and a finished deployment. Real server, real Redis and PostgreSQL, Chromium at the
sizes the team uses; screenshots go to /tmp/screens/ for a person to look at."""

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals import services as approval_services
from approvals.models import Gate, GateRule
from checklists.importing import import_runbook
from deployments import live
from deployments import services as deployment_services
from deployments.models import DeploymentRole, DeploymentState, Item
from rollouts import controller

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("/tmp/screens")
SIZES = {"1920x1080": (1920, 1080), "1280x800": (1280, 800), "390x844": (390, 844), "3840x2160": (3840, 2160)}


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def assert_in_viewport(page, selector):
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    assert box is not None, f"{selector} is not shown"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= size["width"] + 1, (selector, box, size)
    assert box["y"] + box["height"] <= size["height"] + 1, (selector, box, size)


def assert_no_scrolling(page):
    height, inner = page.evaluate("[document.scrollingElement.scrollHeight, window.innerHeight]")
    assert height <= inner + 1, f"the page scrolls: {height} px in a {inner} px window"


def running_deployment(crew):
    """In progress, a gate that QA (twice: QA Lead and DBA) and the product owner vote on,
    and a canary rollout at 10 % with manual readings."""
    deployment, people = crew
    deployment_services.set_participant(deployment, people["lead"], people["qa"], role_names=["QA Lead", "DBA"])
    gate = Gate.objects.get(deployment=deployment)
    roles = list(
        DeploymentRole.objects.filter(deployment=deployment, name__in=["QA Lead", "DBA", "Product Owner"]).values_list(
            "pk", flat=True
        )
    )
    approval_services.configure_gate(gate.pk, people["lead"], voter_role_ids=roles, rule=GateRule.UNANIMOUS)
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    spec = {
        "router": "manual",
        "sample": 5,
        "stages": [{"weight": 10, "hold": 60}, {"weight": 50, "hold": 60}, {"weight": 100, "hold": 0}],
        "gates": [{"name": "error_rate", "source": "manual", "threshold": 1, "unit": "%"}],
    }
    plan = controller.define_plan(deployment, spec, actor=people["lead"])
    controller.start_rollout(plan.pk, people["lead"])
    controller.tick(plan.pk)  # the manual router asks a person to set the first weight
    plan.refresh_from_db()
    if plan.state == "waiting":
        controller.confirm_weight(plan.pk, people["lead"])
    metric = plan.gates.get()
    for value in (0.2, 0.4, 0.3, 0.6):
        controller.enter_reading(metric.pk, people["lead"], value=value)
    approval_services.cast_vote(gate.pk, people["po"], "go", reason="business ready")
    return deployment, people, gate, plan


UNNAMED_CONTROLS = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary'))
  .filter(el => el.offsetParent !== null)
  .filter(el => {
    const named = (el.getAttribute('aria-label') || el.textContent || el.value || el.title || '').trim();
    const labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) || el.closest('label')
      || el.getAttribute('aria-labelledby');
    return !named && !labelled;
  })
  .map(el => el.outerHTML.slice(0, 160))"""


def assert_every_control_named(page):
    unnamed = page.evaluate(UNNAMED_CONTROLS)
    assert not unnamed, f"controls without an accessible name: {unnamed}"


TV_PARTS = ["#t-clock", "#deployment-state", "#tv-current-step", ".tv-gate", ".tv-voters li"]


@pytest.mark.parametrize("size", list(SIZES))
def test_tv_fits_one_screen_follows_by_itself_and_shows_why_it_stopped(crew, login, size):
    deployment, people, gate, plan = running_deployment(crew)
    width, height = SIZES[size]
    tv = login("observer", viewport={"width": width, "height": height})
    tv.goto(f"/deployments/{deployment.pk}/tv/")
    expect(tv.locator("#conn-state")).to_have_text("Live")
    tv.evaluate("window.__noReload = true")
    for part in TV_PARTS:
        assert_in_viewport(tv, part)
    assert_no_scrolling(tv)
    # The tally names each person once, with every voting role they hold.
    voters = tv.locator(".tv-voters li")
    expect(voters.filter(has_text="Quinn")).to_have_count(1)
    expect(voters.filter(has_text="Quinn")).to_contain_text("DBA, QA Lead")
    expect(voters.filter(has_text="Pat Owner")).to_contain_text("GO")
    expect(tv.locator("#t-clock")).to_have_text(re.compile(r"T[-+]\d\d:\d\d:\d\d"))
    shot(tv, f"tv-run-{size}")

    # A box ticked elsewhere: the TV's step progress follows without a reload.
    item = Item.objects.get(deployment=deployment, text="Check 1.1")
    expect(tv.locator(".tv-now")).to_contain_text("0/3")
    deployment_services.update_item(item.pk, people["devops"], revision=None, checked=True)
    expect(tv.locator(".tv-now")).to_contain_text("1/3", timeout=5000)

    # The rollout is aborted: the reason, in words, takes the top of the screen.
    controller.abort_rollout(plan.pk, people["lead"], reason="error rate 4.2 % over the 1 % line")
    banner = tv.get_by_role("alert").filter(has_text="Rollout aborted")
    expect(banner).to_contain_text("error rate 4.2 % over the 1 % line", timeout=5000)
    for part in [".tv-stop", *TV_PARTS]:
        assert_in_viewport(tv, part)
    assert_no_scrolling(tv)
    assert tv.locator(".tv-stop").bounding_box()["y"] < tv.locator("#t-clock").bounding_box()["y"]
    assert tv.evaluate("window.__noReload") is True
    shot(tv, f"tv-abort-{size}")


def test_war_room_header_links_the_tv(crew, login):
    deployment, _ = crew
    page = login("lead", viewport={"width": 1280, "height": 800})
    page.goto(f"/deployments/{deployment.pk}/")
    expect(page.locator("#conn-state")).to_have_text("Live")
    for name in ("New gate", "Rollout plan", "API tokens"):
        expect(page.locator("#wr-header").get_by_role("link", name=name)).to_be_visible()
    expect(page.locator("#wr-header .viewer-zone")).to_have_text("Europe/Berlin")
    shot(page, "warroom-lead-1280x800")
    page.get_by_role("link", name="TV view").click()
    page.wait_for_url(f"**/deployments/{deployment.pk}/tv/")
    expect(page.locator("#t-clock")).to_be_visible()


def test_phone_shows_the_product_owner_their_vote_first(crew, login):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    roles = list(
        DeploymentRole.objects.filter(deployment=deployment, name__in=["QA Lead", "Product Owner"]).values_list("pk", flat=True)
    )
    approval_services.configure_gate(gate.pk, people["lead"], voter_role_ids=roles, rule=GateRule.UNANIMOUS)
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    po = login("po", viewport={"width": 390, "height": 844})
    po.goto(f"/deployments/{deployment.pk}/me/")
    expect(po.locator("#conn-state")).to_have_text("Live")
    first = po.get_by_role("button", name="Vote GO").first
    expect(first).to_be_visible()
    assert_in_viewport(po, f"#me-gate-{gate.pk} button.go")
    shot(po, "phone-po-390x844")

    # A NO-GO asks for its reason in a field, not a dialog; the card goes once the vote is in.
    po.get_by_text("Vote NO-GO…").click()
    po.get_by_label("Why NO-GO? (required)").fill("the partner API is not ready")
    po.locator(f"#me-gate-{gate.pk}").get_by_role("button", name="Vote NO-GO").click()
    expect(po.locator(f"#me-gate-{gate.pk}")).to_have_count(0, timeout=5000)
    expect(po.locator(".me-rest")).to_contain_text("NO-GO")
    expect(po.locator(".me-rest")).to_contain_text("the partner API is not ready")
    expect(po.locator(".me-line")).to_contain_text("Paused")
    assert gate.votes.get().reason == "the partner API is not ready"
    shot(po, "phone-po-voted-390x844")


def test_war_room_at_phone_width_starts_with_my_vote(crew, login):
    deployment, people = crew
    gate = Gate.objects.get(deployment=deployment)
    roles = list(DeploymentRole.objects.filter(deployment=deployment, name="Product Owner").values_list("pk", flat=True))
    approval_services.configure_gate(gate.pk, people["lead"], voter_role_ids=roles, rule=GateRule.UNANIMOUS)
    po = login("po", viewport={"width": 390, "height": 844})
    po.goto(f"/deployments/{deployment.pk}/")
    expect(po.locator("#conn-state")).to_have_text("Live")
    first = po.locator("#wr-mine").get_by_role("button", name="Vote GO")
    expect(first).to_be_visible()
    assert_in_viewport(po, f"#wr-mine #me-gate-{gate.pk} button.go")
    shot(po, "phone-warroom-po-390x844")
    first.click()
    expect(po.locator(f"#wr-mine #me-gate-{gate.pk}")).to_have_count(0, timeout=5000)
    expect(po.locator(f"#gate-{gate.pk} .decision")).to_contain_text("GO", timeout=5000)


def test_finished_deployment_clock_stops_and_its_controls_go(crew, login):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    deployment_services.change_state(
        deployment.pk, people["lead"], DeploymentState.COMPLETED, override_reason="checked in the vendor console"
    )
    lead = login("lead", viewport={"width": 1280, "height": 800})
    lead.goto(f"/deployments/{deployment.pk}/")
    expect(lead.locator("#conn-state")).to_have_text("Live")
    expect(lead.locator("#deployment-state")).to_have_text("Completed")
    expect(lead.get_by_text("Re-anchor T-0")).to_have_count(0)
    expect(lead.get_by_role("button", name="Vote GO")).to_have_count(0)
    expect(lead.get_by_role("checkbox", name="Check 1.1")).to_be_disabled()
    clock = lead.locator("#t-clock")
    before = clock.inner_text()
    time.sleep(2.2)
    assert clock.inner_text() == before, "a finished deployment's clock moved"
    expect(lead.locator("#wr-header")).to_contain_text("took")
    shot(lead, "finished-warroom-1280x800")

    tv = login("observer", viewport={"width": 1920, "height": 1080})
    tv.goto(f"/deployments/{deployment.pk}/tv/")
    before = tv.locator("#t-clock").inner_text()
    time.sleep(2.2)
    assert tv.locator("#t-clock").inner_text() == before
    expect(tv.locator(".tv-clock")).to_contain_text("took")
    shot(tv, "finished-tv-1920x1080")


def test_tv_recovers_by_itself_after_a_dropped_connection_and_a_redis_restart(crew, login):
    deployment, people = crew
    sockets = []

    def relay(ws):
        server = ws.connect_to_server()
        sockets.append(ws)
        server.on_message(ws.send)

    tv = login("observer", viewport={"width": 1920, "height": 1080})
    tv.route_web_socket("**/ws/**", relay)
    tv.goto(f"/deployments/{deployment.pk}/tv/")
    expect(tv.locator("#conn-state")).to_have_text("Live")
    tv.evaluate("window.__noReload = true")

    # The server restarts (it closes sockets with 1012); a box is ticked meanwhile; the TV catches up by itself.
    sockets[-1].close(code=1012, reason="service restart")
    expect(tv.locator("#conn-state")).not_to_have_text("Live")
    item = Item.objects.get(deployment=deployment, text="Check 1.1")
    deployment_services.update_item(item.pk, people["devops"], revision=None, checked=True)
    expect(tv.locator(".tv-now")).to_contain_text("1/3", timeout=15000)
    expect(tv.locator("#conn-state")).to_have_text("Live", timeout=15000)

    # Redis restarts: the numbers start again under a new epoch; later changes still show.
    live.redis_client().delete(live.EPOCH_KEY, f"warroom:seq:{deployment.pk}")
    for text in ("Check 1.2", "Check 1.3"):
        item = Item.objects.get(deployment=deployment, text=text)
        deployment_services.update_item(item.pk, people["devops"], revision=None, checked=True)
    expect(tv.locator(".tv-now")).to_contain_text("Step 2", timeout=5000)
    assert tv.evaluate("window.__noReload") is True


def test_tv_without_a_websocket_polls(crew, login):
    deployment, people = crew
    tv = login("observer", viewport={"width": 1280, "height": 800})
    tv.context.route_web_socket("**/ws/**", lambda ws: ws.close())
    tv.goto(f"/deployments/{deployment.pk}/tv/")
    expect(tv.locator("#conn-state")).to_contain_text("updating every few seconds", timeout=15000)
    item = Item.objects.get(deployment=deployment, text="Check 1.1")
    deployment_services.update_item(item.pk, people["devops"], revision=None, checked=True)
    expect(tv.locator(".tv-now")).to_contain_text("1/3", timeout=15000)


DEMO_RUNBOOK = Path(__file__).resolve().parents[2] / "checklists" / "demo" / "expense-accounts-procedure.md"
KEYWORDS = {"po": ("product owner",), "qa": ("qa",), "devops": ("devops",), "dba": ("dba", "database", "security")}


def test_the_demo_runbook_on_the_tv_and_the_phone(crew, login):
    """The real demo runbook (long titles, people in several near-identical roles)."""
    _, people = crew
    version = import_runbook(DEMO_RUNBOOK.read_bytes(), filename=DEMO_RUNBOOK.name, user=people["lead"]).version
    deployment = deployment_services.create_deployment(
        version,
        lead=people["lead"],
        name="Expense accounts (MBM-116) production release",
        service="expenses",
        version_label="1.16.0",
        environment="production",
        planned_t0=timezone.now() + timedelta(minutes=20),
        timezone_name="Europe/Berlin",
    )
    role_names = list(deployment.roles.values_list("name", flat=True))
    for username, keywords in KEYWORDS.items():
        mine = [r for r in role_names if any(k in r.lower() for k in keywords)]
        deployment_services.set_participant(deployment, people["lead"], people[username], role_names=mine)
    deployment_services.set_participant(deployment, people["lead"], people["observer"], role_names=[])

    tv = login("observer", viewport={"width": 1920, "height": 1080})
    tv.goto(f"/deployments/{deployment.pk}/tv/")
    expect(tv.locator("#conn-state")).to_have_text("Live")
    for part in ["#t-clock", "#deployment-state", "#tv-current-step", ".tv-gate"]:
        assert_in_viewport(tv, part)
    assert_no_scrolling(tv)
    names = tv.locator(".tv-voters li .name").all_inner_texts()
    assert len(names) == len(set(names)), names  # each person once
    shot(tv, "demo-tv-1920x1080")
    assert tv.locator("button, input, select, textarea, summary").count() == 0  # nothing that needs a mouse

    po = login("po", viewport={"width": 390, "height": 844})
    po.goto(f"/deployments/{deployment.pk}/me/")
    expect(po.locator("#conn-state")).to_have_text("Live")
    shot(po, "demo-phone-po-390x844")
    assert_every_control_named(po)
    # Keyboard: from the first vote's reason field, Tab reaches its button.
    po.locator(".me-waiting input:not([type=hidden])").first.focus()
    po.keyboard.press("Tab")
    expect(po.locator(".me-waiting button.go").first).to_be_focused()
    po.goto(f"/deployments/{deployment.pk}/")
    expect(po.locator("#conn-state")).to_have_text("Live")
    shot(po, "demo-warroom-po-390x844")
    assert_every_control_named(po)
