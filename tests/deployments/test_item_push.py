"""The push after a tick reads only what its fragments show, and shows exactly what a reload
would: the fragments equal those rendered from the whole board."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checklists.models import TemplateCodeBlock, TemplateItem, TemplateStep
from deployments import board as board_module
from deployments import services
from deployments.models import Item
from tests.factories import make_deployment, make_user, make_version, staff_deployment


def full_board_fragments(item: Item, *, step_changed: bool) -> list[str]:
    """The same fragments, rendered from the whole board (what a reload shows)."""
    board = board_module.load_board(item.deployment_id)
    step = next(s for s in board.steps if s.pk == item.step_id)
    parts = ["step", "progress", "events", "status"] + (["timeline"] if step_changed else [])
    return [board_module.render(part, board, **({"step": step} if part == "step" else {})) for part in parts]


def checkbox(html: str, item: Item) -> str:
    """The checkbox input of ``item`` in ``html``, up to its closing bracket."""
    found = re.search(rf'<input type="checkbox" id="cb-{item.pk}"[^>]*>', html)
    assert found, f"no checkbox for {item.text}"
    return found.group(0)


def tick(user, item: Item, **data):
    client = Client()
    client.force_login(user)
    item.refresh_from_db()
    response = client.post(f"/deployments/{item.deployment_id}/items/{item.pk}/", {"revision": item.revision, **data})
    assert response.status_code == 204, response.content


@pytest.fixture
def war_room(db, monkeypatch):
    """Three steps of four lines, a sign-off step (field, choice, gate); the second step has a
    code block and a group of two lines. Started two hours late, so steps are late."""
    version = make_version(steps=3, items_per_step=4)
    second = TemplateStep.objects.get(phase__version=version, title="Step 2")
    TemplateCodeBlock.objects.create(step=second, position=0, info="sh", code="kubectl rollout status deploy/api && echo '<ok>'")
    group = TemplateItem.objects.create(step=second, position=10, text="Smoke")
    for i, text in enumerate(["Login works", "Payments work"]):
        TemplateItem.objects.create(step=second, parent=group, position=11 + i, text=text)
    lead = make_user("lead")
    deployment = make_deployment(lead=lead, version=version)
    people = staff_deployment(deployment, lead)
    services.reanchor_t0(deployment.pk, lead, timezone.now() - timedelta(hours=2), reason="started late")
    # Step 1 (DevOps) all done; in step 2 (QA) one line of the group and the first line.
    for item in Item.objects.filter(deployment=deployment, step__title="Step 1"):
        tick(people["devops"], item, checked="1")
    tick(people["qa"], Item.objects.get(deployment=deployment, text="Login works"), checked="1")
    tick(people["qa"], Item.objects.get(deployment=deployment, text="Check 2.1"), checked="1")
    # One clock for both renders: the timeline's "now" line and the late list depend on it.
    frozen = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    return deployment, people


@pytest.mark.parametrize("step_changed", [False, True])
def test_tick_push_equals_the_full_board_fragments(war_room, step_changed):
    deployment, people = war_room
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    pushed = board_module.render_item_push(item.pk, step_changed=step_changed)
    assert pushed == full_board_fragments(item, step_changed=step_changed)
    step, progress, events, status = pushed[:4]
    # The ticked line shows checked; the untouched one next to it does not.
    assert " checked" in checkbox(step, item)
    assert " checked" not in checkbox(step, Item.objects.get(deployment=deployment, text="Check 2.2"))
    # The step's code block (escaped) and its group with one of two lines done.
    assert "kubectl rollout status deploy/api &amp;&amp; echo &#x27;&lt;ok&gt;&#x27;" in step
    group = Item.objects.get(deployment=deployment, text="Smoke")
    assert f'id="item-{group.pk}" class="item kind-check is-group"' in step
    # Counted by hand: 3 steps × 4 lines + 2 in the group + field, choice and gate = 17 lines;
    # step 1's four, "Login works" and "Check 2.1" are done.
    assert "Overall 6 / 17" in progress
    assert '<span class="count">2/6</span>' in step
    assert "Check 2.1" in events
    assert "Decision" in status  # the next gate, the sign-off's


def test_a_field_and_a_finished_step_push_the_same_as_the_full_board(war_room):
    deployment, people = war_room
    field = Item.objects.get(deployment=deployment, text="Time Completed")
    tick(people["po"], field, value="02:30 <CET>")
    pushed = board_module.render_item_push(field.pk, step_changed=True)
    assert pushed == full_board_fragments(field, step_changed=True)
    assert 'value="02:30 &lt;CET&gt;"' in pushed[0]
    step_one = Item.objects.filter(deployment=deployment, step__title="Step 1").first()
    assert board_module.render_item_push(step_one.pk, step_changed=True) == full_board_fragments(step_one, step_changed=True)


def test_the_push_does_not_read_the_other_steps_lines(war_room):
    """A fixed number of queries however many lines the other steps hold."""
    deployment, people = war_room
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    with CaptureQueriesContext(connection) as ctx:
        board_module.render_item_push(item.pk, step_changed=False)
    item_reads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT "deployments_item"."id"')]
    # The line itself, its step's lines, the next open gate: never every line of the deployment.
    assert len(item_reads) == 3, item_reads
    narrow = ('"deployments_item"."id" IN (', '"deployments_item"."step_id" IN (', "LIMIT")
    assert all("WHERE" in sql and any(mark in sql for mark in narrow) for sql in item_reads), item_reads
