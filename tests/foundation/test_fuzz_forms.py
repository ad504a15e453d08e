"""Every URL pattern, fuzzed: hypothesis posts (and queries) every form and API field name
Warroom reads, with NUL bytes, control characters, unicode, huge and non-finite numbers,
long strings and valid-looking values, as each persona. Nothing may answer 5xx, and a
refused request (4xx) may write nothing — except what a refusal is meant to record.

Field names are read from the code (every request.POST/GET read and every form field), so a
new field is fuzzed without anyone listing it. Each example runs in a savepoint that is
rolled back, so examples do not pile up state.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest
from django import forms as django_forms
from django.apps import apps
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals import services as approval_services
from approvals.models import Gate, GateRule, RequiredApproval
from deployments.events import verify_chain
from deployments.models import DeploymentState, Event
from reports.models import Outcome
from tests.factories import make_user

BASE = Path(__file__).resolve().parents[2]
APPS = ["checklists", "deployments", "approvals", "rollouts", "comms", "incidents", "reports"]
SKIPPED = ("admin/", "healthz")  # Django's own admin; healthz reads no input and pings the workers
EXAMPLES = 5  # per route and run: ~370 examples, about a minute here

# --- what to fuzz: every route, and every field name the code reads ----------------------------


def _routes(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif not route.startswith(SKIPPED):
            yield route, pattern.callback


VIEWS = dict(_routes(get_resolver().url_patterns))
ROUTES = sorted(VIEWS)
_READ = re.compile(r"request\.(?:POST|GET)(?:\.get|\.getlist)?[\[(]\s*[\"']([A-Za-z_][\w-]*)[\"']")
_HELPER_READ = re.compile(r"\(request, [\"']([A-Za-z_]\w*)[\"']")  # _prompt(request, "reason")
_IN_READ = re.compile(r"[\"']([A-Za-z_]\w*)[\"'] in request\.POST")  # if "remove" in request.POST
_HELPER_CALL = re.compile(r"\b(_\w+)\(request\b")  # _rule_from_post(request, deployment)
_FORM_USED = re.compile(r"\b([A-Z]\w*Form)\(")


def _view_fields(route: str) -> list[str]:
    """The fields a route's view reads: its own request.POST/GET reads and its forms' fields."""
    view = inspect.unwrap(VIEWS[route])
    view = getattr(view, "view_class", view)
    try:
        source = inspect.getsource(view)
    except (OSError, TypeError):
        return []
    module = sys.modules[view.__module__]
    for helper in _HELPER_CALL.findall(source):
        if callable(getattr(module, helper, None)):
            source += inspect.getsource(getattr(module, helper))
    names = set(_READ.findall(source)) | set(_HELPER_READ.findall(source)) | set(_IN_READ.findall(source))
    for form_name in _FORM_USED.findall(source):
        form = getattr(module, form_name, None)
        if isinstance(form, type) and issubclass(form, django_forms.BaseForm):
            names.update(form.base_fields)
            names.update(f"{prefix}-{name}" for name in form.base_fields for prefix in ("p", "c"))
    return sorted(names)


def _field_names() -> list[str]:
    names = set()
    for app in APPS:
        for path in (BASE / app).glob("*.py"):
            names.update(_READ.findall(path.read_text()))
    for model_app in APPS:
        try:
            module = __import__(f"{model_app}.forms", fromlist=["*"])
        except ImportError:
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, django_forms.BaseForm) and value is not django_forms.Form:
                names.update(value.base_fields)
                names.update(f"{prefix}-{name}" for name in value.base_fields for prefix in ("p", "c"))
    return sorted(names)


FIELDS = _field_names()
WORDS = sorted(
    {
        *DeploymentState.values,
        *GateRule.values,
        *Outcome.values,
        "go",
        "no_go",
        "on",
        "1",
        "0",
        "-1",
        "T-24h",
        "T+2h30",
        "2031-03-01T14:00",
        "2031-03-01",
        "sev1",
        "sev4",
        "email",
        "webhook",
        "QA Lead",
        "Product Owner",
        "start",
        "abort",
    }
)

# Control characters and emoji; NUL comes from the list below, so that most examples get past
# the middleware that refuses it and reach the views.
CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")
TEXT = st.text(CHARACTERS, max_size=40)
VALUES = st.one_of(
    TEXT,
    st.sampled_from(WORDS),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "1e-999", "0x10", "", " ", "\x00", "a\x00b", "٣", "9" * 30]),
    st.text(CHARACTERS, min_size=300, max_size=2_000),
    st.just("x" * 20_000),
)


def _ids(context):
    return st.sampled_from([str(v) for v in context["ids"]])


def _form(context, route):
    """Each field this route's view reads, most of the time (so examples reach its checks), plus a
    few of any view's."""
    value = st.one_of(VALUES, _ids(context), st.lists(st.one_of(VALUES, _ids(context)), max_size=3))
    own = _view_fields(route) + context["extra_fields"]
    others = st.dictionaries(st.sampled_from(FIELDS), value, max_size=2)
    return st.tuples(st.fixed_dictionaries({}, optional=dict.fromkeys(own, value)), others).map(
        lambda pair: {**pair[1], **pair[0]}
    )


def _json_body():
    scalar = st.one_of(VALUES, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
    return st.dictionaries(st.sampled_from(["note", "value", "checked", "revision"]), scalar, max_size=3)


# --- the world the fuzzer walks in ---------------------------------------------------------------


@pytest.fixture
def world(crew, monkeypatch):
    deployment, people = crew
    monkeypatch.setattr("approvals.api.MAX_WAIT_SECONDS", 0.2)  # a valid ?wait= must not hold the run
    staff = make_user("staff")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    people = {**people, "staff": staff}
    _, token = approval_services.create_api_token(deployment, people["lead"], name="fuzz")
    version = deployment.runbook_version
    phase = version.phases.first()
    step = phase.steps.first()
    kwargs_by_prefix = {
        "runbooks/versions/": {"pk": version.pk},
        "runbooks/phases/": {"pk": phase.pk},
        "runbooks/steps/": {"pk": step.pk},
        "runbooks/items/": {"pk": step.items.first().pk},
        "runbooks/": {"pk": version.runbook_id},
    }
    common = {
        "pk": deployment.pk,
        "item_pk": deployment.items.filter(is_group=False).first().pk,
        "gate_pk": Gate.objects.filter(deployment=deployment).first().pk,
        "approval_pk": getattr(RequiredApproval.objects.filter(deployment=deployment).first(), "pk", 1),
        "step_pk": deployment.steps.first().pk,
        "run_pk": 1,
        "job_pk": 1,
        "template_pk": 1,
        "scheduled_pk": 1,
        "incident_pk": 1,
        "verb": "start",
        "token": "no-such-token",
    }
    ids = {deployment.pk, *deployment.roles.values_list("pk", flat=True), *deployment.items.values_list("pk", flat=True)}
    ids |= {p.pk for p in people.values()}
    return {
        "deployment": deployment,
        "people": people,
        "token": token,
        "kwargs_by_prefix": kwargs_by_prefix,
        "common": common,
        "ids": sorted(ids),
        "extra_fields": [f"role_quorum_{pk}" for pk in deployment.roles.values_list("pk", flat=True)],
    }


def _url(route: str, world) -> str:
    values = dict(world["common"])
    for prefix, overrides in world["kwargs_by_prefix"].items():
        if route.startswith(prefix):
            values.update(overrides)
            break

    def fill(match):
        return str(values.get(match.group(2), 1))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", fill, route)


def _counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for app in APPS
        for model in apps.get_app_config(app).get_models()
        if not model._meta.proxy
    }


# A refusal that is itself recorded: a wrong sign-off password (an event).
RECORDED_REFUSALS = {"deployments.Event"}


@pytest.mark.parametrize("route", ROUTES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_form_or_api_input_answers_500_or_half_writes(world, route, data):
    # Mostly those who get past the permission checks to the input handling.
    persona = data.draw(st.sampled_from(["anonymous", "outsider", "observer", "qa", "lead", "lead", "staff", "staff"]))
    client = Client()
    if persona != "anonymous":
        client.force_login(world["people"][persona])
    url = _url(route, world)
    deployment = world["deployment"]
    with transaction.atomic():
        if route.startswith("api/"):
            auth = {"HTTP_AUTHORIZATION": f"Bearer {world['token']}"}
            query = data.draw(st.dictionaries(st.sampled_from(["wait", "x"]), VALUES, max_size=2))
            body = data.draw(_json_body())
            requests = [
                lambda: client.get(url, query, **auth),
                lambda: client.post(url, data=body, content_type="application/json", **auth),
            ]
        else:
            query, form = data.draw(_form(world, route)), data.draw(_form(world, route))
            requests = [lambda: client.get(url, query), lambda: client.post(url, form)]
        for send in requests:
            before, last_seq = _counts(), Event.objects.filter(deployment=deployment).count()
            response = send()
            assert response.status_code < 500, (persona, url, response.status_code)
            # Location may quote the request's own URL (login?next=…), which the server bounds.
            headers = {name: value for name, value in response.headers.items() if name != "Location"}
            assert all(len(value) < 4096 for value in headers.values()), "an unbounded response header"
            if response.status_code >= 400:
                after = _counts()
                changed = {label for label in after if after[label] != before[label]} - RECORDED_REFUSALS
                assert not changed, f"{persona} {url}: a refused request wrote {changed}"
                new_events = Event.objects.filter(deployment=deployment, seq__gt=last_seq)
                assert set(new_events.values_list("action", flat=True)) <= {"signoff.failed"}
        assert verify_chain(deployment.pk).ok
        transaction.set_rollback(True)
