"""A refusal no view caught still gets a plain 4xx, never a 500: the one middleware that maps them."""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from deployments.models import Deployment
from deployments.services import InvalidChange, StaleChange
from rollouts.runs import QueueUnavailable
from warroom.middleware import DomainErrorsMiddleware

pytestmark = pytest.mark.django_db


def _answer(exception, path="/deployments/1/", **headers):
    request = RequestFactory().post(path, headers=headers)
    request.user = AnonymousUser()
    middleware = DomainErrorsMiddleware(lambda r: None)
    return middleware.process_exception(request, exception)


@pytest.mark.parametrize(
    ("exception", "status", "message"),
    [
        (InvalidChange("A NO-GO needs a reason."), 400, "A NO-GO needs a reason."),
        (StaleChange("Quinn changed this a moment ago.", current=None), 409, "Quinn changed this a moment ago."),
        (QueueUnavailable("Cannot reach the task queue."), 503, "Cannot reach the task queue."),
        (PermissionDenied("Only the lead may move T-0."), 403, "Only the lead may move T-0."),
        (Deployment.DoesNotExist(), 404, "Not found."),
    ],
)
def test_each_kind_of_refusal_gets_its_status_for_api_htmx_and_pages(exception, status, message):
    api = _answer(exception, path="/api/v1/deployments/1/gates/")
    assert api.status_code == status and json.loads(api.content) == {"error": message}
    htmx = _answer(exception, HX_Request="true")
    assert htmx.status_code == status and htmx.content.decode() == message
    assert message in json.loads(htmx.headers["HX-Trigger"])["warroom:toast"]
    page = _answer(exception)
    assert page.status_code == status and message in page.content.decode()


def test_anything_else_is_left_to_django():
    assert _answer(ValueError("a bug")) is None
