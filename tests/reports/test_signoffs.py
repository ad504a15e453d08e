"""Final sign-offs: a signature is an intentional act, confirmed with the signer's password."""

import pytest
from django.db import IntegrityError, transaction

from deployments import services as deployment_services
from deployments.events import verify_chain
from deployments.models import Deployment, DeploymentRole, DeploymentState, Event
from deployments.permissions import PermissionDenied
from reports import services, signoffs
from reports.models import Outcome, SignOff
from tests.factories import PASSWORD, make_deployment, make_user, staff_deployment
from tests.reports.conftest import make_report_version

STATEMENT = "All verification checks passed; smoke tests green."


def _sign(deployment, user, role="QA Lead", **overrides):
    kwargs = {"role_name": role, "outcome": Outcome.SUCCESS, "statement": STATEMENT, "password": PASSWORD, **overrides}
    return services.sign_off(deployment.pk, user, **kwargs)


def test_the_runbooks_sign_off_section_names_who_signs(finished_crew):
    deployment, _ = finished_crew
    assert [role.name for role in signoffs.requested_roles(deployment)] == ["QA Lead", "Product Owner"]


def test_longest_role_name_wins_on_a_sign_off_line():
    roles = [DeploymentRole(name="QA"), DeploymentRole(name="QA Lead"), DeploymentRole(name="DevOps")]
    assert signoffs.role_named_by("**QA Lead** — Date", roles).name == "QA Lead"
    assert signoffs.role_named_by("QA: ______", roles).name == "QA"
    assert signoffs.role_named_by("QAnon", roles) is None
    assert signoffs.role_named_by("DevOps Engineer", roles).name == "DevOps"


def test_a_sign_off_step_assigned_to_a_role_asks_that_role(crew):
    deployment, _ = crew  # tests.factories' runbook: a "Sign-off" step owned by the Product Owner
    assert [role.name for role in signoffs.requested_roles(deployment)] == ["Product Owner"]


def test_without_a_sign_off_section_every_staffed_role_signs(db):
    lead = make_user("lead")
    deployment = make_deployment(lead=lead, version=make_report_version(with_sign_off=False))
    staff_deployment(deployment, lead)  # QA Lead, DevOps Engineer, Product Owner, DBA
    assert [role.name for role in signoffs.requested_roles(deployment)] == ["QA Lead", "DevOps Engineer", "Product Owner", "DBA"]


def test_sign_off_is_recorded_and_chained(finished_crew):
    deployment, people = finished_crew
    signed = _sign(deployment, people["qa"], outcome=Outcome.SUCCESS_WITH_ISSUES)
    assert signed.signer_name == "Quinn Assurance" and signed.role.name == "QA Lead"
    event = Event.objects.filter(deployment=deployment).order_by("-seq").first()
    assert event.action == "signoff.given" and event.actor == people["qa"]
    assert event.after["outcome"] == "success_with_issues" and event.after["statement"] == STATEMENT
    assert verify_chain(deployment.pk).ok


def test_wrong_password_is_refused_and_only_the_refusal_is_recorded(finished_crew):
    deployment, people = finished_crew
    before = Deployment.objects.get(pk=deployment.pk).event_count
    with pytest.raises(services.WrongPassword, match="not correct"):
        _sign(deployment, people["qa"], password="guess")
    with pytest.raises(services.WrongPassword):
        _sign(deployment, people["qa"], password="")
    assert not SignOff.objects.filter(deployment=deployment).exists()
    failed = list(Event.objects.filter(deployment=deployment, seq__gt=before).order_by("seq"))
    assert [(e.action, e.actor, e.after) for e in failed] == [
        ("signoff.failed", people["qa"], {"role": "QA Lead", "reason": "wrong password"})
    ] * 2
    assert all("guess" not in f"{e.summary}{e.after}" for e in failed)
    assert verify_chain(deployment.pk).ok


def test_one_sign_off_per_role(finished_crew):
    deployment, people = finished_crew
    _sign(deployment, people["qa"])
    with pytest.raises(deployment_services.InvalidChange, match="already given by Quinn Assurance"):
        _sign(deployment, people["qa"], statement="Again")
    # The database says so too, whatever a future code path forgets.
    first = SignOff.objects.get(deployment=deployment)
    with pytest.raises(IntegrityError), transaction.atomic():
        SignOff.objects.create(
            deployment=deployment,
            role=first.role,
            user=people["lead"],
            signer_name="x",
            outcome=Outcome.SUCCESS,
            statement="x",
            signed_at=first.signed_at,
        )


@pytest.mark.parametrize(
    ("persona", "role", "error", "message"),
    [
        ("devops", "QA Lead", PermissionDenied, "Only someone holding the QA Lead role"),
        ("lead", "QA Lead", PermissionDenied, "Only someone holding"),  # the lead does not sign for others
        ("dba", "DBA", deployment_services.InvalidChange, "does not ask the DBA"),
        ("qa", "Chief Vibes Officer", deployment_services.InvalidChange, "no role"),
        ("outsider", "QA Lead", Deployment.DoesNotExist, None),
    ],
)
def test_who_may_sign_for_which_role(finished_crew, persona, role, error, message):
    deployment, people = finished_crew
    with pytest.raises(error, match=message):
        _sign(deployment, people[persona], role=role)
    assert not SignOff.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"statement": "   "}, "Write a statement"),
        ({"statement": "x" * 2001}, "too long"),
        ({"outcome": "great"}, "Choose an outcome"),
    ],
)
def test_a_sign_off_needs_an_outcome_and_a_statement(finished_crew, overrides, message):
    deployment, people = finished_crew
    with pytest.raises(deployment_services.InvalidChange, match=message):
        _sign(deployment, people["qa"], **overrides)


def test_sign_offs_open_when_the_deployment_has_finished(report_crew):
    deployment, people = report_crew
    assert deployment.state == DeploymentState.IN_PROGRESS
    with pytest.raises(deployment_services.InvalidChange, match="once the deployment has finished"):
        _sign(deployment, people["qa"])
