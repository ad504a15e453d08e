"""Every page and mutating endpoint, walked by every persona."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services as approval_services
from approvals.models import Gate, GateRule
from checklists.models import Runbook, RunbookVersion, TemplateCodeBlock, TemplateItem, TemplatePhase, TemplateRole, TemplateStep
from deployments import live, screens, services
from deployments import services as deployment_services
from deployments.models import Deployment, DeploymentRole, DeploymentState, Event, Item
from deployments.templatetags.screens import readings_grouped
from incidents import services as incident_services
from tests.conftest import free_port
from tests.factories import make_deployment, make_user, make_version, staff_deployment

VIEWERS = ["lead", "po", "qa", "devops", "dba", "observer"]


def client_for(user):
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize("persona", [*VIEWERS, "outsider"])
@pytest.mark.parametrize("page", ["", "board/", "events/", "people/", "tv/", "tv/board/", "me/", "me/board/"])
def test_pages_visible_to_participants_only(crew, persona, page):
    deployment, people = crew
    response = client_for(people[persona]).get(f"/deployments/{deployment.pk}/{page}")
    assert response.status_code == (404 if persona == "outsider" else 200)


def test_anonymous_is_sent_to_login(crew):
    deployment, _ = crew
    response = Client().get(f"/deployments/{deployment.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# persona → expected status when ticking an item of a QA Lead step
TICK_QA_ITEM = {"lead": 204, "qa": 204, "po": 403, "devops": 403, "dba": 403, "observer": 403, "outsider": 404}
CHANGE_STATE = {"lead": 204, "qa": 403, "po": 403, "devops": 403, "dba": 403, "observer": 403, "outsider": 404}


@pytest.mark.parametrize(("persona", "expected"), TICK_QA_ITEM.items())
def test_tick_permission_matrix(crew, persona, expected):
    deployment, people = crew
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    response = client_for(people[persona]).post(
        f"/deployments/{deployment.pk}/items/{item.pk}/", {"revision": item.revision, "checked": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == expected
    item.refresh_from_db()
    assert item.checked is (expected == 204)


@pytest.mark.parametrize(("persona", "expected"), CHANGE_STATE.items())
def test_state_permission_matrix(crew, persona, expected):
    deployment, people = crew
    response = client_for(people[persona]).post(f"/deployments/{deployment.pk}/state/", {"state": "scheduled"})
    assert response.status_code == expected
    deployment.refresh_from_db()
    assert (deployment.state == "scheduled") is (expected == 204)


@pytest.mark.parametrize(("persona", "expected"), CHANGE_STATE.items())
def test_reanchor_permission_matrix(crew, persona, expected):
    deployment, people = crew
    before = deployment.planned_t0
    response = client_for(people[persona]).post(
        f"/deployments/{deployment.pk}/t0/", {"t0": "2031-03-01T02:00", "timezone": "UTC", "reason": "slip"}
    )
    assert response.status_code == expected
    deployment.refresh_from_db()
    assert (deployment.planned_t0 != before) is (expected == 204)


@pytest.mark.parametrize(("persona", "expected"), {**CHANGE_STATE, "lead": 302}.items())
def test_people_permission_matrix(crew, persona, expected):
    deployment, people = crew
    response = client_for(people[persona]).post(
        f"/deployments/{deployment.pk}/people/", {"p-username": "outsider", "p-roles": ["QA Lead"]}
    )
    assert response.status_code == expected
    assert deployment.participants.filter(user__username="outsider").exists() is (expected == 302)


def test_csrf_is_enforced_on_ticks(crew):
    deployment, people = crew
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["qa"])
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    response = client.post(f"/deployments/{deployment.pk}/items/{item.pk}/", {"revision": item.revision, "checked": "1"})
    assert response.status_code == 403
    item.refresh_from_db()
    assert not item.checked


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"revision": "abc", "checked": "1"}, 400, "malformed"),
        ({"revision": "0"}, 204, ""),  # a missing 'checked' means unticked: nothing changes
    ],
)
def test_malformed_tick_posts_get_clear_answers(crew, data, status, message):
    deployment, people = crew
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    events_before = Event.objects.filter(deployment=deployment).count()
    response = client_for(people["qa"]).post(f"/deployments/{deployment.pk}/items/{item.pk}/", data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert Event.objects.filter(deployment=deployment).count() == events_before


def test_stale_tick_shows_current_state_and_says_so(crew):
    deployment, people = crew
    item = Item.objects.get(deployment=deployment, text="Check 2.1")
    seen = item.revision
    client_for(people["qa"]).post(f"/deployments/{deployment.pk}/items/{item.pk}/", {"revision": seen, "checked": "1"})
    response = client_for(people["lead"]).post(f"/deployments/{deployment.pk}/items/{item.pk}/", {"revision": seen})
    assert response.status_code == 200
    assert "changed this item a moment ago" in response["HX-Trigger"]
    item.refresh_from_db()
    assert item.checked


def test_item_of_another_deployment_is_404(crew):
    deployment, people = crew

    other = make_deployment(lead=people["lead"])
    foreign = Item.objects.filter(deployment=other).first()
    response = client_for(people["lead"]).post(
        f"/deployments/{deployment.pk}/items/{foreign.pk}/", {"revision": 0, "checked": "1"}
    )
    assert response.status_code == 404


def test_warroom_render_query_count_does_not_grow_with_items(db):
    """The factory's runbook, with its gate, for 50 and for 200 checklist lines."""
    lead = make_user("lead")
    counts = []
    for steps in (5, 20):
        deployment = make_deployment(lead=lead, steps=steps, items_per_step=10)
        staff_deployment(deployment, lead)
        client = client_for(lead)
        client.get(f"/deployments/{deployment.pk}/")  # a process's first page fills Django's content-type cache
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/deployments/{deployment.pk}/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def plain_runbook(items: int):
    """Shaped like the bench's war room: steps of ten checklist lines, each step with a code
    block to copy, the factory's four roles, no gate."""
    runbook = Runbook.objects.create(name=f"Plain runbook {items}")
    version = RunbookVersion.objects.create(runbook=runbook, number=1, title=runbook.name)
    roles = [
        TemplateRole.objects.create(version=version, name=name, position=i)
        for i, name in enumerate(["QA Lead", "DevOps Engineer", "Product Owner", "DBA"])
    ]
    phase = TemplatePhase.objects.create(version=version, position=0, title="Deployment")
    for s in range(items // 10):
        step = TemplateStep.objects.create(phase=phase, position=s, title=f"Step {s + 1}", role=roles[s % 2], offset_minutes=s)
        TemplateCodeBlock.objects.create(step=step, position=0, info="sh", code=f"./deploy --step {s + 1} && echo '<ok>'")
        TemplateItem.objects.bulk_create(TemplateItem(step=step, position=i, text=f"Check {s + 1}.{i + 1}") for i in range(10))
    return version


def test_warroom_page_makes_at_most_20_queries_for_50_or_200_items(db, django_assert_max_num_queries):
    lead = make_user("lead")
    counts = []
    for items in (50, 200):
        deployment = make_deployment(lead=lead, version=plain_runbook(items))
        staff_deployment(deployment, lead)
        client = client_for(lead)
        client.get(f"/deployments/{deployment.pk}/")  # a process's first page fills Django's content-type cache
        with django_assert_max_num_queries(20) as captured:
            response = client.get(f"/deployments/{deployment.pk}/")
        assert response.status_code == 200
        counts.append(len(captured.captured_queries))
        page = response.content.decode()
        # What is read in fewer queries is all there: one code block per step, escaped, and
        # every person with the roles they hold (the observer none).
        assert page.count('<div class="code">') == items // 10
        assert "./deploy --step 1 &amp;&amp; echo &#x27;&lt;ok&gt;&#x27;" in page
        people = page[page.index('id="wr-people"') : page.index("Manage people and contacts")]
        for name, role in [
            ("Pat Owner", "Product Owner"),
            ("Quinn Assurance", "QA Lead"),
            ("Devi Ops", "DevOps Engineer"),
            ("Dana Base", "DBA"),
        ]:
            entry = people[people.index(name) :]
            entry = entry[: entry.index("</li>")]
            assert f'<span class="role">{role}</span>' in entry, entry
        observer = people[people.index("Olli Watcher") :]
        assert '<span class="role observer">Observer</span>' in observer[: observer.index("</li>")]
    assert counts[0] == counts[1], counts


def test_dashboard_shows_only_my_deployments_with_filters(crew):
    deployment, people = crew

    make_deployment(lead=make_user("someone-else"))
    page = client_for(people["qa"]).get("/").content.decode()
    assert page.count("Release 1.2") == 2  # the card and the calendar, for the one I take part in
    assert client_for(people["qa"]).get("/?state=bogus").status_code == 400
    assert "Release 1.2" not in client_for(people["qa"]).get("/?environment=staging").content.decode()


def test_create_deployment_in_a_time_zone(db):
    lead = make_user("lead")
    version = make_version()
    response = client_for(lead).post(
        "/deployments/new/",
        {
            "runbook_version": version.pk,
            "name": "Night release",
            "service": "api",
            "version_label": "3.0",
            "environment": "production",
            "planned_t0": "2031-07-01T02:00",
            "timezone": "America/New_York",
            "window_start": "2031-07-01T01:30",
            "window_end": "2031-07-01T05:00",
        },
    )
    assert response.status_code == 302
    deployment = Deployment.objects.get(name="Night release")
    assert deployment.planned_t0.isoformat() == "2031-07-01T06:00:00+00:00"  # EDT is UTC-4
    bad = client_for(lead).post(
        "/deployments/new/",
        {
            "runbook_version": version.pk,
            "name": "Bad",
            "service": "api",
            "version_label": "3.0",
            "environment": "production",
            "planned_t0": "2031-07-01T02:00",
            "timezone": "UTC",
            "window_start": "2031-07-01T05:00",
            "window_end": "2031-07-01T01:00",
        },
    )
    assert bad.status_code == 400 and "must end after it starts" in bad.content.decode()
    assert not Deployment.objects.filter(name="Bad").exists()


def test_verify_events_command(crew, capsys):
    deployment, _ = crew
    call_command("verify_events", deployment.pk)
    assert f"OK: {deployment.events.count()} events" in capsys.readouterr().out
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM deployments_event WHERE deployment_id = %s AND seq = 2", [deployment.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    with pytest.raises(CommandError, match="#2"):
        call_command("verify_events", deployment.pk)


def test_late_step_is_visible_on_the_board(crew):
    deployment, people = crew

    services.reanchor_t0(deployment.pk, people["lead"], timezone.now() - timedelta(hours=2), reason="late start")
    page = client_for(people["qa"]).get(f"/deployments/{deployment.pk}/board/").content.decode()
    assert "Late:" in page and 'href="#step-' in page.split("Late:")[1].split("</div>")[0]


def test_the_board_renders_from_postgresql_while_redis_is_down(crew, monkeypatch):
    """The fallback a screen fetches must not depend on the thing that failed."""

    deployment, people = crew
    monkeypatch.setattr(live, "_redis_client", redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1))
    for url in (f"/deployments/{deployment.pk}/board/", f"/deployments/{deployment.pk}/"):
        response = client_for(people["qa"]).get(url)
        assert response.status_code == 200, url
        assert "Check 2.1" in response.content.decode()
    assert client_for(people["qa"]).get(f"/deployments/{deployment.pk}/board/").headers["X-Warroom-Epoch"] == ""


# --- the screens: TV, phone, finished, people once ---------------------------------------


def _two_role_voter(deployment, people):
    deployment_services.set_participant(deployment, people["lead"], people["qa"], role_names=["QA Lead", "DBA"])
    gate = Gate.objects.get(deployment=deployment)
    roles = list(DeploymentRole.objects.filter(deployment=deployment, name__in=["QA Lead", "DBA"]).values_list("pk", flat=True))
    approval_services.configure_gate(gate.pk, people["lead"], voter_role_ids=roles, rule=GateRule.UNANIMOUS)
    return gate


@pytest.mark.parametrize("page", ["", "tv/", "me/"])
def test_a_tally_lists_a_person_once_with_their_roles(crew, page):
    deployment, people = crew
    _two_role_voter(deployment, people)
    html = client_for(people["lead"]).get(f"/deployments/{deployment.pk}/{page}").content.decode()
    assert html.count("Quinn Assurance") >= 1
    if page == "":
        assert html.count(f'data-voter="{people["qa"].pk}"') == 1
    assert "DBA, QA Lead" in html


def test_finished_deployment_has_a_stopped_clock_and_no_controls(crew):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.COMPLETED, override_reason="vendor console")
    html = client_for(people["lead"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert "Re-anchor T-0" not in html
    assert 'id="t-clock" data-t0' not in html and "t-clock stopped" in html
    assert "took " in html
    assert "Vote GO" not in html
    tv = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/tv/").content.decode()
    assert "t-clock stopped" in tv and "data-t0" not in tv


def test_phone_lists_what_waits_for_me_first(crew):
    deployment, people = crew
    gate = _two_role_voter(deployment, people)
    html = client_for(people["qa"]).get(f"/deployments/{deployment.pk}/me/").content.decode()
    waiting = html.index("Waiting for you")
    assert waiting < html.index(f'id="me-gate-{gate.pk}"') < html.index("Everything else")
    assert "Why NO-GO? (required)" in html
    # The product owner does not vote on this gate: nothing of it waits for them.
    other = client_for(people["po"]).get(f"/deployments/{deployment.pk}/me/").content.decode()
    assert f'id="me-gate-{gate.pk}"' not in other


def test_tv_fragment_carries_the_live_position(crew):
    deployment, people = crew
    response = client_for(people["observer"]).get(f"/deployments/{deployment.pk}/tv/board/")
    assert response.status_code == 200
    assert "X-Warroom-Seq" in response and "X-Warroom-Epoch" in response
    assert b"tv-grid" in response.content and b"<html" not in response.content


def test_favicon_is_linked_and_served(crew, client):
    deployment, people = crew
    html = client_for(people["qa"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert 'rel="icon"' in html
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


def test_lead_pages_are_linked_from_the_war_room_header(crew):
    deployment, people = crew
    html = client_for(people["lead"]).get(f"/deployments/{deployment.pk}/").content.decode()
    for url in ("gates/new/", "rollout/plan/", "tokens/", "tv/", "me/"):
        assert f'href="/deployments/{deployment.pk}/{url}"' in html, url


def test_the_war_room_asks_for_my_waiting_part_without_duplicating_its_lines(crew):
    deployment, people = crew
    gate = _two_role_voter(deployment, people)
    html = client_for(people["qa"]).get(f"/deployments/{deployment.pk}/me/board/?part=waiting").content.decode()
    assert f'id="me-gate-{gate.pk}"' in html
    assert 'id="item-' not in html  # the war room below has the lines: no second element with their ids
    page = client_for(people["qa"]).get(f"/deployments/{deployment.pk}/").content.decode()
    assert f'data-url="/deployments/{deployment.pk}/me/board/?part=waiting"' in page


def test_typed_metric_readings_fold_into_one_recent_events_line():

    def event(seq, action, summary):
        return SimpleNamespace(seq=seq, action=action, summary=summary, created_at=None, actor_label="Lena Lead")

    events = [
        event(9, "rollout.weight", "Traffic at 25 %"),
        event(8, "rollout.reading", "error_rate = 0.6 % read by hand"),
        event(7, "rollout.reading", "error_rate = 0.4 % read by hand"),
        event(6, "rollout.reading", "error_rate = 0.2 % read by hand"),
        event(5, "item.updated", "Ticked"),
        event(4, "rollout.reading", "error_rate = 0.1 % read by hand"),
    ]
    lines = readings_grouped(events)
    assert [line.summary for line in lines] == [
        "Traffic at 25 %",
        "3 metric readings typed in; latest: error_rate = 0.6 % read by hand",
        "Ticked",
        "error_rate = 0.1 % read by hand",
    ]
    assert lines[1].seq == "6–8"


def _in_progress(deployment, people):
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)


def _stop_banner(client, deployment):
    html = client.get(f"/deployments/{deployment.pk}/tv/").content.decode()
    start = html.find('role="alert" aria-label="Stopped"')
    return html[start : html.find("</section>", start)] if start >= 0 else ""


def test_tv_banner_says_why_a_no_go_stopped_the_deployment(crew):
    deployment, people = crew
    gate = _two_role_voter(deployment, people)
    _in_progress(deployment, people)
    assert _stop_banner(client_for(people["observer"]), deployment) == ""
    approval_services.cast_vote(gate.pk, people["qa"], "no_go", reason="smoke tests fail on the EU cluster")
    banner = _stop_banner(client_for(people["observer"]), deployment)
    assert "NO-GO at “Sign-off: Decision”" in banner
    assert "smoke tests fail on the EU cluster" in banner
    assert banner.count("smoke tests fail") == 1  # the pause it caused says nothing new: not repeated


def test_tv_banner_names_an_open_sev1_and_a_pause_with_its_reason(crew):
    deployment, people = crew
    _in_progress(deployment, people)
    deployment_services.change_state(deployment.pk, people["lead"], DeploymentState.PAUSED, reason="waiting for the vendor")
    incident_services.raise_incident(
        deployment.pk, people["qa"], severity="sev1", title="Payments return 500", impact="all EU customers"
    )
    banner = _stop_banner(client_for(people["observer"]), deployment)
    assert "SEV1 INC-1: Payments return 500" in banner and "all EU customers" in banner
    assert "Deployment paused" in banner and "waiting for the vendor" in banner


def test_tv_fragment_is_rendered_once_per_push_however_many_tvs_fetch_it(crew, monkeypatch):
    deployment, people = crew
    calls = []
    real = screens.tv_context
    monkeypatch.setattr(screens, "tv_context", lambda pk: calls.append(pk) or real(pk))
    url = f"/deployments/{deployment.pk}/tv/board/"
    first = client_for(people["observer"]).get(url)
    second = client_for(people["qa"]).get(url)
    assert first.content == second.content and len(calls) == 1
    live.publish(deployment.pk, [])  # a push: the next fetch renders the new state
    client_for(people["po"]).get(url)
    assert len(calls) == 2
    # The cache never lets an outsider see it.
    assert client_for(people["outsider"]).get(url).status_code == 404
