"""The event log as an auditor uses it: filters in the URL, the same events in the CSV and
the JSON export, before/after and the step in words, and whether the chain still holds.

Every expected list below is written from what the test itself did, in order."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from deployments import actors, services
from deployments.event_log import csv_cell
from deployments.events import record_event
from deployments.models import Event, Item, Step
from tests.factories import make_user

# The deployment is planned in Europe/Berlin: 08:00 UTC on 1 July 2031 is 10:00 CEST.
T = datetime(2031, 7, 1, 8, 0, 0, tzinfo=UTC)


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clock(monkeypatch):
    """The moment events are written at, set by the test (everything else is real)."""
    now = {"value": T}
    monkeypatch.setattr(timezone, "now", lambda: now["value"])
    return now


def _set(item_text, deployment, actor, **change):
    item = Item.objects.get(deployment=deployment, text=item_text)
    services.update_item(item.pk, actor, revision=item.revision, **change)


@pytest.fixture
def night(crew, clock):
    """Five changes at known moments (Berlin time in the comments)."""
    deployment, people = crew
    clock["value"] = T  # 10:00:00
    _set("Check 1.1", deployment, people["devops"], checked=True)
    clock["value"] = T + timedelta(minutes=5)  # 10:05:00
    _set("Check 2.1", deployment, people["qa"], checked=True)
    clock["value"] = T + timedelta(minutes=10, seconds=30)  # 10:10:30
    _set("Time Completed", deployment, people["po"], value="10:42")
    clock["value"] = T + timedelta(minutes=20, milliseconds=400)  # 10:20:00.4
    _set("Check 1.1", deployment, people["devops"], checked=False)
    clock["value"] = T + timedelta(minutes=30)  # 10:30:00
    _set("Check 1.2", deployment, actors.pipeline("ci"), checked=True)
    return deployment, people


def _page_summaries(response) -> list[str]:
    """(kind, text) of each row, read from the page's markup."""
    return [(line.event.action, line.event.summary) for line in response.context["lines"]]


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


TICK_11 = ("item.ticked", "Ticked “Check 1.1”")
TICK_21 = ("item.ticked", "Ticked “Check 2.1”")
FIELD = ("field.set", "Set “Time Completed” = 10:42")
UNTICK_11 = ("item.unticked", "Unticked “Check 1.1”")
PIPELINE_12 = ("item.ticked", "Ticked “Check 1.2”")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"actor": "Devi Ops"}, [TICK_11, UNTICK_11]),
        ({"actor": "Pipeline “ci”"}, [PIPELINE_12]),
        ({"kind": "item"}, [TICK_11, TICK_21, UNTICK_11, PIPELINE_12]),
        ({"kind": "item.unticked"}, [UNTICK_11]),
        ({"kind": "field.set"}, [FIELD]),
        ({"step": "Step 1"}, [TICK_11, UNTICK_11, PIPELINE_12]),
        ({"step": "Step 2"}, [TICK_21]),
        # From is inclusive; To keeps its whole second (the untick at 10:20:00.4 is in).
        ({"since": "2031-07-01T10:05", "until": "2031-07-01T10:20:00"}, [TICK_21, FIELD, UNTICK_11]),
        ({"since": "2031-07-01T10:10:31"}, [UNTICK_11, PIPELINE_12]),
        ({"until": "2031-07-01T10:04:59"}, "crew+tick"),
        ({"actor": "Devi Ops", "since": "2031-07-01 10:01"}, [UNTICK_11]),
        ({"step": "Step 1", "kind": "item.ticked", "actor": "Devi Ops"}, [TICK_11]),
    ],
)
def test_filters_select_exactly_the_events_asked_for(night, query, expected):
    deployment, people = night
    if "step" in query:
        query = {**query, "step": str(Step.objects.get(deployment=deployment, title=query["step"]).pk)}
    response = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/events/", query)
    assert response.status_code == 200
    if expected == "crew+tick":
        # Before 10:05 Berlin: the deployment's creation and its five people (written at the
        # real time, years earlier), and the first tick.
        expected = [("deployment.created", None)] + [("participant.set", None)] * 5 + [TICK_11]
        got = _page_summaries(response)
        assert [kind for kind, _ in got] == [kind for kind, _ in expected] and got[-1] == TICK_11
    else:
        assert _page_summaries(response) == expected


def test_a_line_says_when_to_the_second_in_the_zone_who_what_before_after_and_the_step(night):
    deployment, people = night
    page = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/events/", {"kind": "field.set"})
    html = page.content.decode()
    assert '<label for="id_since">From (Europe/Berlin)</label>' in html
    assert 'aria-describedby="id_since_helptext"' in html and 'id="id_since_helptext"' in html
    assert '<time datetime="2031-07-01T08:10:30Z">2031-07-01 10:10:30 CEST</time>' in html
    assert "Pat Owner" in html
    assert "in step “Sign-off”" in html
    assert "<del>—</del> → <ins>10:42</ins>" in html
    assert "Europe/Berlin" in html

    untick = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/events/", {"kind": "item.unticked"})
    assert "<del>ticked</del> → <ins>not ticked</ins>" in untick.content.decode()
    assert "in step “Step 1”" in untick.content.decode()

    pipeline = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/events/", {"actor": "Pipeline “ci”"})
    assert 'Pipeline “ci” <span class="badge">system</span>' in pipeline.content.decode()


def test_state_and_t0_changes_show_from_and_to(crew):
    deployment, people = crew
    old_t0 = deployment.planned_t0
    new_t0 = datetime(2031, 7, 1, 20, 0, 5, tzinfo=UTC)
    services.reanchor_t0(deployment.pk, people["lead"], new_t0, reason="vendor window moved")
    services.change_state(deployment.pk, people["lead"], "scheduled")
    client = client_for(people["qa"])

    moved = client.get(f"/deployments/{deployment.pk}/events/", {"kind": "deployment.reanchored"}).content.decode()
    was = old_t0.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"t0</span>: <del>{was:%Y-%m-%d %H:%M:%S} {was:%Z}</del> → <ins>2031-07-01 22:00:05 CEST</ins>" in moved
    assert "vendor window moved" in moved

    state = client.get(f"/deployments/{deployment.pk}/events/", {"kind": "deployment.state"}).content.decode()
    assert "<del>Draft</del> → <ins>Scheduled</ins>" in state


def test_csv_and_json_export_exactly_the_filtered_events_with_before_and_after(night):
    deployment, people = night
    step_1 = Step.objects.get(deployment=deployment, title="Step 1").pk
    query = {"step": step_1, "actor": "Devi Ops"}
    client = client_for(people["observer"])
    ticked, unticked = Event.objects.filter(deployment=deployment, actor=people["devops"]).order_by("seq")

    rows = _csv(client.get(f"/deployments/{deployment.pk}/events.csv", query))
    assert [(r["seq"], r["kind"], r["text"]) for r in rows] == [
        (str(ticked.seq), "item.ticked", "Ticked “Check 1.1”"),
        (str(unticked.seq), "item.unticked", "Unticked “Check 1.1”"),
    ]
    first, second = rows
    assert first["time_utc"] == "2031-07-01T08:00:00Z" and first["time_local"] == "2031-07-01 10:00:00 CEST"
    assert second["time_utc"] == "2031-07-01T08:20:00Z"
    assert first["actor"] == "Devi Ops" and first["actor_type"] == "person"
    assert first["step"] == "step “Step 1”"
    assert json.loads(second["before"]) == {"checked": True, "value": "", "note": ""}
    assert json.loads(second["after"]) == {"checked": False, "value": "", "note": ""}
    assert second["changes"] == "checked: ticked → not ticked"
    assert (first["hash"], second["hash"]) == (ticked.hash, unticked.hash)

    exported = client.get(f"/deployments/{deployment.pk}/events.json", query)
    assert exported["Content-Disposition"] == f'attachment; filename="deployment-{deployment.pk}-events.json"'
    body = json.loads(exported.content)
    assert [e["seq"] for e in body["events"]] == [ticked.seq, unticked.seq]
    assert body["events"][1]["before"] == {"checked": True, "value": "", "note": ""}
    assert body["events"][1]["changes"] == [{"field": "checked", "before": "ticked", "after": "not ticked"}]
    assert body["events"][0]["time_utc"] == "2031-07-01T08:00:00Z"
    assert body["chain"]["intact"] is True

    # The page shows the same events for the same querystring, and links to these exports.
    page = client.get(f"/deployments/{deployment.pk}/events/", query)
    assert [line.event.seq for line in page.context["lines"]] == [ticked.seq, unticked.seq]
    assert f"/deployments/{deployment.pk}/events.csv?actor=Devi+Ops&amp;step={step_1}" in page.content.decode()


def test_a_formula_typed_by_a_user_is_text_in_the_csv(crew):
    deployment, people = crew
    mallory = make_user("mallory")
    mallory.first_name, mallory.last_name = '=HYPERLINK("http://evil.example","x")', ""
    mallory.save()
    services.set_participant(deployment, people["lead"], mallory, role_names=["Product Owner"])
    _set("Time Completed", deployment, mallory, value="@SUM(1+1)")
    rows = _csv(client_for(people["observer"]).get(f"/deployments/{deployment.pk}/events.csv", {"kind": "field.set"}))
    assert len(rows) == 1
    assert rows[0]["actor"] == '\'=HYPERLINK("http://evil.example","x")'
    assert json.loads(rows[0]["after"])["value"] == "@SUM(1+1)"  # inside JSON, not at a cell's start
    for cell in ("=1+1", "+1", "-1+2", "@x", "\tx"):
        assert csv_cell(cell) == "'" + cell
    assert csv_cell("Ticked “Check 1.1”") == "Ticked “Check 1.1”"


def test_html_typed_by_a_user_is_shown_as_text(crew):
    deployment, people = crew
    _set("Time Completed", deployment, people["po"], value='<img src=x onerror="alert(1)">')
    html = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/events/").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"step": "abc"}, "no step “abc”"),
        ({"step": "999999999"}, "no step “999999999”"),
        ({"kind": "nonsense"}, "No events of kind “nonsense”"),
        ({"actor": "Nobody Here"}, "Nobody called “Nobody Here”"),
        ({"since": "yesterday"}, "“yesterday” is not a date and time"),
        ({"since": "2031-07-01T10:00", "until": "2031-07-01T09:00"}, "“To” is before “From”"),
        ({"page": "two"}, "whole number"),
        ({"page": "0"}, "greater than or equal to 1"),
    ],
)
def test_an_invalid_filter_is_refused_in_words(crew, query, says):
    deployment, people = crew
    client = client_for(people["observer"])
    page = client.get(f"/deployments/{deployment.pk}/events/", query)
    assert page.status_code == 400
    assert says in page.content.decode().replace("&ldquo;", "“").replace("&rdquo;", "”")
    assert "cannot be applied" in page.content.decode()
    export = client.get(f"/deployments/{deployment.pk}/events.csv", query)
    assert export.status_code == 400 and says in export.content.decode()


def test_a_long_log_is_paged_and_every_page_keeps_the_filter(crew, django_assert_max_num_queries):
    deployment, people = crew
    with transaction.atomic():
        for n in range(2050):
            record_event(deployment.pk, actor=None, action="test.note", summary=f"note {n}")
    client = client_for(people["observer"])
    first = client.get(f"/deployments/{deployment.pk}/events/", {"kind": "test.note"})
    assert [line.event.summary for line in first.context["lines"]][:2] == ["note 0", "note 1"]
    assert "Events 1–100 of 2050 matching the filter" in first.content.decode()
    assert "?kind=test.note&amp;page=2" in first.content.decode()
    with django_assert_max_num_queries(40):  # one page does not read the log a row at a time
        last = client.get(f"/deployments/{deployment.pk}/events/", {"kind": "test.note", "page": "21"})
    assert [line.event.summary for line in last.context["lines"]] == [f"note {n}" for n in range(2000, 2050)]
    assert "Chain intact — 2056 events verified" in last.content.decode()
    rows = _csv(client.get(f"/deployments/{deployment.pk}/events.csv", {"kind": "test.note", "page": "3"}))
    assert len(rows) == 2050  # the export is the whole filtered view, not one page


def test_the_badge_says_intact_and_names_the_event_a_tamperer_changed(crew):
    deployment, people = crew
    client = client_for(people["observer"])
    count = Event.objects.filter(deployment=deployment).count()
    assert f"Chain intact — {count} events verified" in client.get(f"/deployments/{deployment.pk}/events/").content.decode()

    # What the database's owner can do and the application's role cannot: rewrite a row.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE deployments_event SET summary = %s WHERE deployment_id = %s AND seq = 3", ["nothing happened", deployment.pk]
        )
    html = client.get(f"/deployments/{deployment.pk}/events/").content.decode()
    assert "Chain intact" not in html
    assert "Chain broken at event #3</strong>: event #3 was changed after it was written" in html
    assert json.loads(client.get(f"/deployments/{deployment.pk}/events.json").content)["chain"]["intact"] is False
