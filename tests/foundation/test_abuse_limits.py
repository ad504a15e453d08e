"""Abuse limits, each reproduced as the attack was made and shown refused: password guessing
at login, NUL bytes, the debug page's secrets, a Content-Security-Policy on every page, and
demo endpoints that exist only in the demo."""

import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, RequestFactory
from django.utils import timezone
from django.views.debug import ExceptionReporter

from rollouts.models import DEMO_SOURCE, MetricGate, MetricSource, MetricSourceKind, RolloutPlan
from tests.factories import PASSWORD, make_user

LIMIT = settings.AXES_FAILURE_LIMIT


def _login(username, password, address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/login/", {"username": username, "password": password})


def _logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


# --- login lockout: per account and per address --------------------------------------------


def test_the_right_password_is_refused_after_too_many_wrong_ones(db):
    make_user("qa")
    for _ in range(LIMIT - 1):
        assert _login("qa", "guess").status_code == 200  # the form again, "not correct"
    assert _login("qa", "guess").status_code == 429  # the last allowed failure locks
    locked = _login("qa", PASSWORD)
    assert locked.status_code == 429 and not _logged_in(locked)
    assert b"Too many wrong passwords" in locked.content
    # Per account: another address does not help the guesser, nor the owner, until the lockout ends.
    assert _login("qa", PASSWORD, address="10.9.9.9").status_code == 429
    assert AccessAttempt.objects.filter(username="qa").exists()


def test_the_lockout_ends_after_the_cool_off(db):
    make_user("qa")
    for _ in range(LIMIT):
        _login("qa", "guess")
    assert _login("qa", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert _logged_in(_login("qa", PASSWORD))


def test_one_address_guessing_many_accounts_is_locked_out(db):
    for name in ("qa", "po", "devops", "dba", "observer", "lead"):
        make_user(name)
    for victim in ("qa", "po", "devops", "dba", "observer")[:LIMIT]:
        _login(victim, "guess", address="10.6.6.6")
    # Fewer than LIMIT tries at each account, but the address is out of tries.
    assert _login("lead", PASSWORD, address="10.6.6.6").status_code == 429
    # The lead from another address is not held by someone else's guessing.
    assert _logged_in(_login("lead", PASSWORD, address="10.1.2.3"))


def test_logging_in_to_ones_own_account_does_not_reset_the_guess_count(db):
    make_user("qa")
    make_user("outsider")
    for _ in range(LIMIT - 1):
        _login("qa", "guess", address="10.6.6.6")
    _login("outsider", PASSWORD, address="10.7.7.7")
    _login("qa", "guess", address="10.7.7.7")
    assert _login("qa", PASSWORD, address="10.8.8.8").status_code == 429


# --- NUL bytes: 400 before any view or the database --------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/status/%00/", None),  # anonymous: was a 500 (and the debug page under make run)
        ("get", "/?service=a%00b", None),  # the dashboard filter
        ("post", "/login/", {"username": "qa\x00", "password": "x"}),
        ("post", "/deployments/1/state/", {"state": "paused", "reason": "why\x00"}),
        ("post", "/deployments/1/people/", {"remove\x00": "1"}),
    ],
)
def test_nul_bytes_are_refused_with_400(db, method, path, data):
    client = Client()
    client.force_login(make_user("lead"))
    response = getattr(client, method)(path, data) if data is not None else getattr(client, method)(path)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_nul_in_a_json_body_is_refused(db):
    response = Client().post("/api/v1/deployments/1/items/1/done/", data='{"note": "a\\u0000b"}', content_type="application/json")
    assert response.status_code == 400


# --- the debug page shows no connection URLs -------------------------------------------------


def test_debug_page_hides_database_and_redis_urls(db, settings):
    settings.DEBUG = True
    request = RequestFactory().get("/status/x/", HTTP_COOKIE="sessionid=abc")
    request.META["DATABASE_URL"] = settings.DATABASE_URL  # as runserver's environ would carry it
    try:
        raise ValueError("boom")
    except ValueError:
        html = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    for secret in (settings.DATABASE_URL, settings.REDIS_URL, settings.CELERY_RESULT_BACKEND):
        assert secret not in html
    assert not re.search(r"(redis|postgres|postgresql)://\w", html)  # no such URL anywhere (this source quotes the schemes)
    assert "REDIS_URL" in html and "DATABASE_URL" in html  # named, with the value hidden
    assert "ROOT_URLCONF" in html  # the rest of the page is still useful


# --- Content-Security-Policy --------------------------------------------------------------


def test_every_page_carries_a_content_security_policy(crew):
    deployment, people = crew
    client = Client()
    assert "script-src 'self'" in client.get("/login/")["Content-Security-Policy"]
    client.force_login(people["lead"])
    for path in ("/", f"/deployments/{deployment.pk}/", f"/reports/{deployment.pk}/", "/runbooks/", "/admin/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy


# --- demo endpoints exist only in the demo -------------------------------------------------


def test_demo_endpoints_are_not_routed_outside_the_demo(db):
    assert settings.WARROOM_DEMO is False  # the default, and production's
    staff = make_user("admin")
    staff.is_staff = True
    staff.save()
    client = Client()
    client.force_login(staff)
    for path in ("/demo/health", "/demo/metrics", "/demo/router"):
        assert client.get(path).status_code == 404
        assert client.post(path, {"healthy": "0"}).status_code == 404


def test_demo_health_needs_the_demo_leads_csrf_checked_post(crew, demo_on):
    deployment, people = crew
    plan = RolloutPlan.objects.create(deployment=deployment)
    demo_source = MetricSource.objects.create(name=DEMO_SOURCE, kind=MetricSourceKind.HTTP_JSON, url="http://x/demo/metrics")
    MetricGate.objects.create(
        plan=plan, name="error_rate", source="http_json", source_def=demo_source, source_config={"path": "e"}, threshold=1
    )
    form = {"healthy": "0", "deployment": str(deployment.pk)}
    assert Client().post("/demo/health", form).status_code == 302  # to the login page
    for who, status in (("outsider", 404), ("qa", 403)):
        client = Client()
        client.force_login(people[who])
        assert client.post("/demo/health", form).status_code == status
        assert client.post("/demo/health", {"healthy": "0"}).status_code == 404  # no deployment named
    csrf_checked = Client(enforce_csrf_checks=True)
    csrf_checked.force_login(people["lead"])
    assert csrf_checked.post("/demo/health", form).status_code == 403  # no CSRF token
    lead = Client()
    lead.force_login(people["lead"])
    assert lead.post("/demo/health", form).status_code == 200
    # The lead of a deployment that is not the demo's may not press it either.
    other = MetricSource.objects.create(name="prometheus", kind=MetricSourceKind.PROMETHEUS, url="http://prometheus:9090")
    plan.gates.update(source_def=other)
    assert lead.post("/demo/health", form).status_code == 404


def test_no_template_or_script_needs_inline_code_the_policy_would_refuse():
    base = Path(__file__).resolve().parents[2]
    inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\son[a-z]+=|\sstyle=|hx-on[:-]|\bjs:|javascript:", re.IGNORECASE)
    pages = [p for p in base.glob("**/templates/**/*.html") if ".venv" not in p.parts and "pdf" not in p.parts]
    assert len(pages) > 20
    offending = [f"{p.relative_to(base)}: {m.group(0)}" for p in pages for m in inline.finditer(p.read_text())]
    assert offending == []
