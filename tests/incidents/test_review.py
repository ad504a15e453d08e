"""The post-deployment review: planned vs actual from the checklist, incidents, lessons,
action items — and review_data, the function other code (the PDF report) reads."""

import json
from datetime import date, timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from deployments import services as deployment_services
from deployments.models import Event, Item, Step
from deployments.permissions import PermissionDenied
from deployments.services import InvalidChange
from incidents import review, services
from reports.sections import collect
from tests.factories import make_deployment, make_user, staff_deployment


@pytest.fixture
def ran(db):
    """A deployment whose T-0 was 40 minutes ago; Step 1 (T+0, 15 min planned) is done now."""
    lead = make_user("lead")
    deployment = make_deployment(lead=lead, t0=timezone.now().replace(microsecond=0) - timedelta(minutes=40))
    people = staff_deployment(deployment, lead)
    deployment_services.change_state(deployment.pk, lead, "scheduled")
    deployment_services.change_state(deployment.pk, lead, "in_progress")
    for item in Item.objects.filter(deployment=deployment, step__title="Step 1"):
        deployment_services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)
    return deployment, people


def test_planned_vs_actual_per_phase_and_step(ran):
    deployment, people = ran
    [phase] = review.planned_vs_actual(deployment)
    step1, step2, signoff = phase["steps"]
    t0 = deployment.planned_t0
    assert (step1["planned_start"], step1["planned_end"], step1["planned_minutes"]) == (t0, t0 + timedelta(minutes=15), 15)
    assert step1["actual_start"] is not None and step1["actual_end"] is not None
    assert 24 <= step1["end_delta_minutes"] <= 26  # done now, planned to end at T+15 = 25 minutes ago
    assert 39 <= step1["start_delta_minutes"] <= 41
    assert step2["actual_start"] is None and step2["end_delta_minutes"] is None
    assert signoff["planned_start"] is None  # no offset in the runbook
    assert phase["planned_start"] == t0 and phase["planned_end"] == t0 + timedelta(minutes=30)
    assert phase["complete"] is False and phase["actual_end"] is None


def test_the_review_is_written_after_the_deployment_and_read_back_as_data(ran):
    deployment, people = ran
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev2", title="Slow search", impact="EU")
    services.update_incident(incident.pk, people["devops"], text="cache warmed", status="resolved")
    with pytest.raises(InvalidChange, match="opens when the deployment is finished"):
        review.save_review(deployment.pk, people["qa"], notes="x", lessons_learned="y", follow_up_status="open")
    deployment_services.change_state(deployment.pk, people["lead"], "completed", override_reason="only Step 1 ran in this test")

    with pytest.raises(PermissionDenied):
        review.save_review(deployment.pk, people["observer"], notes="x", lessons_learned="y", follow_up_status="open")
    saved = review.save_review(
        deployment.pk,
        people["qa"],
        notes="Met at T+4h",
        lessons_learned="Warm the cache before go-live",
        follow_up_status="in_progress",
        revision=0,
    )
    with pytest.raises(InvalidChange, match="Quinn Assurance saved the review meanwhile"):
        review.save_review(deployment.pk, people["po"], notes="old copy", lessons_learned="", follow_up_status="open", revision=0)
    review.add_action_item(
        deployment.pk, people["lead"], text="Automate cache warm-up", owner_id=people["devops"].pk, due_date=date(2000, 1, 1)
    )
    review.add_action_item(deployment.pk, people["po"], text="Tell support", owner_id=None, due_date=None)

    data = review.review_data(deployment)
    assert data["available"] is True and data["revision"] == saved.revision == 1
    assert data["lessons_learned"] == "Warm the cache before go-live" and data["follow_up_status"] == "in_progress"
    assert data["updated_by"] == "Quinn Assurance"
    assert data["deployment"]["name"] == "Release 1.2" and data["deployment"]["finished_at"] is not None
    assert data["totals"]["actual_minutes"] is not None and data["totals"]["planned_minutes"] == 30
    [inc] = data["incidents"]
    assert (inc["label"], inc["severity_label"], inc["status"], inc["raised_by"]) == (
        "INC-1",
        "SEV2",
        "resolved",
        "Quinn Assurance",
    )
    assert [u["text"] for u in inc["timeline"]] == [
        "Raised as SEV2: Slow search",
        "Status Investigating → Resolved. cache warmed",
    ]
    overdue, no_date = sorted(data["action_items"], key=lambda a: a["text"])
    assert (overdue["owner"], overdue["overdue"], overdue["due_date"]) == ("Devi Ops", True, date(2000, 1, 1))
    assert (no_date["owner"], no_date["overdue"]) == ("", False)
    json.dumps(data, cls=DjangoJSONEncoder)  # what the report stores
    assert {"review.saved", "review.action_added"} <= set(
        Event.objects.filter(deployment=deployment).values_list("action", flat=True)
    )


def test_review_data_of_a_deployment_without_a_review(crew):
    deployment, _ = crew
    data = review.review_data(deployment)
    assert data["available"] is False and data["action_items"] == [] and data["incidents"] == []
    assert data["follow_up_status"] == "open" and len(data["phases"]) == 1


def test_the_report_gets_an_incidents_section(crew):
    deployment, people = crew
    services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Outage")
    services.raise_incident(deployment.pk, people["qa"], severity="sev3", title="Typo")
    section = next(s for s in collect(deployment) if s["key"] == "incidents")
    assert section["summary"] == "2 incidents (1 SEV1, 1 SEV3), 2 still open"
    assert section["tables"][0]["rows"][0][:3] == ["INC-1", "SEV1", "Outage"]
    assert section["records"][1]["title"] == "Typo"


def test_action_items_need_a_participant_owner(ran):
    deployment, people = ran
    deployment_services.change_state(deployment.pk, people["lead"], "completed", override_reason="only Step 1 ran in this test")
    with pytest.raises(InvalidChange, match="one of this deployment's people"):
        review.add_action_item(deployment.pk, people["qa"], text="x", owner_id=people["outsider"].pk, due_date=None)
    assert Step.objects.filter(deployment=deployment).exists()
