"""The rollout plan as a form: in the runbook editor (a version's step carries it) and on a
deployment's plan page (the lead edits it). Real database; routers and metric sources are
defined as an administrator would."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from checklists.importing import import_runbook
from checklists.models import RunbookEdit, TemplateCodeBlock, TemplateStep
from rollouts.forms import RolloutPlanEditor
from rollouts.models import MetricSource, MetricSourceKind, RolloutPlan, Router, RouterKind
from tests.factories import make_deployment, make_user, release_manager

# Line numbers below are counted by hand in this text.
CANARY_RUNBOOK = """# Checkout canary

## Preparation

### Step 1: Announce

**Responsible:** Product Owner

- [ ] Status page updated

## Rollout

### Stage 1 (10%)

**Hold:** 15 min

- [ ] Error rate < 1%

### Stage 2 (50%)

**Hold:** 30 min

- [ ] Dashboards green

### Stage 3 (100%)

- [ ] All traffic on the new version
"""


@pytest.fixture
def admin_defined(db):
    """What an administrator defined: one router, a Prometheus server and an HTTP JSON endpoint."""
    return {
        "router": Router.objects.create(name="edge-router", kind=RouterKind.WEBHOOK, url="https://router.example/w"),
        "prometheus": MetricSource.objects.create(name="prom", kind=MetricSourceKind.PROMETHEUS, url="https://prom.example"),
        "health": MetricSource.objects.create(
            name="health-json", kind=MetricSourceKind.HTTP_JSON, url="https://app.example/health"
        ),
    }


@pytest.fixture
def editor(db):
    user = make_user("editor")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def plan_post(*, stages=(), gates=(), step=None, strategy="canary", router="manual", sample="30", **extra) -> dict:
    """The fields the plan form posts, as a browser sends them (strings)."""
    data = {
        "strategy": strategy,
        "router": router,
        "sample": sample,
        "stage-TOTAL_FORMS": str(len(stages)),
        "stage-INITIAL_FORMS": "0",
        "gate-TOTAL_FORMS": str(len(gates)),
        "gate-INITIAL_FORMS": "0",
    }
    for index, (weight, hold) in enumerate(stages):
        data[f"stage-{index}-weight"], data[f"stage-{index}-hold"] = str(weight), str(hold)
    for index, gate in enumerate(gates):
        row = {"query": "", "comparator": "<", "unit": "", "consecutive_bad": "1", **gate}
        for key, value in row.items():
            data[f"gate-{index}-{key}"] = str(value)
    if step is not None:
        data["step"] = str(step)
    return {**data, **extra}


def test_the_form_builds_exactly_the_spec_a_person_would_write(admin_defined):
    data = plan_post(
        router="edge-router",
        sample="15",
        # A row added and left blank is no stage.
        stages=[(5, "10"), (25, "1.5"), ("", ""), (100, "")],
        gates=[
            {"name": "error rate", "source": "prom", "query": "sum(rate(errors[1m]))", "threshold": "1", "unit": "%",
             "consecutive_bad": "3"},
            {"name": "p95 latency", "source": "health-json", "query": "data.p95", "comparator": "<=", "threshold": "400.5",
             "unit": "ms"},
            {"name": "support tickets", "source": "manual", "comparator": "<", "threshold": "5"},
        ],
    )  # fmt: skip
    editor = RolloutPlanEditor(data)
    assert editor.is_valid(), editor.form.errors
    assert editor.spec == {
        "strategy": "canary",
        "router": "edge-router",
        "sample": 15,
        "stages": [{"weight": 5, "hold": 600}, {"weight": 25, "hold": 90}, {"weight": 100, "hold": 0}],
        "gates": [
            {"name": "error rate", "source": "prom", "query": "sum(rate(errors[1m]))", "comparator": "<",
             "threshold": 1, "unit": "%", "consecutive_bad": 3},
            {"name": "p95 latency", "source": "health-json", "path": "data.p95", "comparator": "<=",
             "threshold": 400.5, "unit": "ms", "consecutive_bad": 1},
            {"name": "support tickets", "source": "manual", "comparator": "<", "threshold": 5, "unit": "",
             "consecutive_bad": 1},
        ],
    }  # fmt: skip


def test_a_form_prefilled_from_a_spec_posts_back_the_same_plan(admin_defined):
    spec = {
        "strategy": "canary",
        "router": "edge-router",
        "sample": 20,
        "stages": [{"weight": 10, "hold": "15m"}, {"weight": 100, "hold": 0}],
        "gates": [{"name": "errors", "source": "health-json", "path": "data.errors", "threshold": 2, "unit": "%"}],
    }
    html = RolloutPlanEditor(spec=spec).form.as_p() + str(RolloutPlanEditor(spec=spec).stages)
    assert 'name="stage-0-weight" value="10"' in html and 'name="stage-0-hold" value="15"' in html  # minutes
    posted = plan_post(
        router="edge-router",
        sample="20",
        stages=[(10, "15"), (100, "0")],
        gates=[{"name": "errors", "source": "health-json", "query": "data.errors", "threshold": "2", "unit": "%"}],
    )
    editor = RolloutPlanEditor(posted)
    assert editor.is_valid()
    assert editor.spec["stages"] == [{"weight": 10, "hold": 900}, {"weight": 100, "hold": 0}]
    assert editor.spec["gates"][0]["path"] == "data.errors"


# --- the deployment's plan page ---------------------------------------------------------------------


def test_the_lead_saves_the_plan_with_the_form(crew, admin_defined):
    deployment, people = crew
    data = plan_post(
        router="edge-router",
        stages=[(5, "5"), (100, "0")],
        gates=[{"name": "errors", "source": "manual", "threshold": "1", "unit": "%"}],
    )
    response = client_for(people["lead"]).post(reverse("rollouts:plan", args=[deployment.pk]), data)
    assert response.status_code == 302
    plan = RolloutPlan.objects.get(deployment=deployment)
    assert plan.router_def == admin_defined["router"]
    assert list(plan.stages.values_list("weight", "hold_seconds")) == [(5, 300), (100, 0)]
    assert list(plan.gates.values_list("name", "comparator", "threshold", "unit")) == [("errors", "<", 1.0, "%")]


def test_falling_weights_come_back_next_to_the_row_and_nothing_is_saved(crew, admin_defined):
    deployment, people = crew
    data = plan_post(stages=[(50, "5"), (25, "5"), (100, "0")])
    response = client_for(people["lead"]).post(reverse("rollouts:plan", args=[deployment.pk]), data)
    assert response.status_code == 400
    html = response.content.decode()
    second_row = re.search(r'<li class="plan-row has-errors" id="plan-stage-2">.*?</li>', html, re.DOTALL)
    assert second_row, "the second stage is marked as the one in error"
    assert "25 % must be more than the stage before (50 %)" in second_row.group(0)
    # What was typed is still there.
    assert 'name="stage-1-weight" value="25"' in html
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


def test_an_unknown_router_is_refused_on_the_form(crew, admin_defined):
    deployment, people = crew
    data = plan_post(router="router-someone-typed", stages=[(100, "0")])
    response = client_for(people["lead"]).post(reverse("rollouts:plan", args=[deployment.pk]), data)
    assert response.status_code == 400
    assert "no router named &#x27;router-someone-typed&#x27; (defined: edge-router)" in response.content.decode()
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


def test_a_gate_cannot_carry_a_url(crew, admin_defined):
    """A plan names sources; a query typed for a gate a person reads is refused, never quietly dropped."""
    deployment, people = crew
    data = plan_post(
        stages=[(100, "0")], gates=[{"name": "errors", "source": "manual", "query": "https://evil/x", "threshold": "1"}]
    )
    response = client_for(people["lead"]).post(reverse("rollouts:plan", args=[deployment.pk]), data)
    assert response.status_code == 400
    assert "A person reads this gate" in response.content.decode()
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


def test_adding_a_stage_without_javascript_keeps_what_was_typed(crew):
    deployment, people = crew
    data = plan_post(stages=[(10, "5")], add_stage="1")
    response = client_for(people["lead"]).post(reverse("rollouts:plan", args=[deployment.pk]), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="stage-TOTAL_FORMS" value="2"' in html
    assert 'name="stage-0-weight" value="10"' in html
    assert 'id="plan-stage-2"' in html
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


def test_others_read_the_plan_and_its_warroom_block(crew):
    deployment, people = crew
    lead = client_for(people["lead"])
    lead.post(reverse("rollouts:plan", args=[deployment.pk]), plan_post(stages=[(20, "10"), (100, "0")]))
    response = client_for(people["qa"]).get(reverse("rollouts:plan", args=[deployment.pk]))
    html = response.content.decode()
    assert "20 % · hold 10 min" in html
    assert 'name="stage-0-weight"' not in html
    assert "As a warroom block" in html and "&quot;action&quot;: &quot;rollout&quot;" in html
    refused = client_for(people["qa"]).post(reverse("rollouts:plan", args=[deployment.pk]), plan_post(stages=[(100, "0")]))
    assert refused.status_code == 403
    assert list(RolloutPlan.objects.get(deployment=deployment).stages.values_list("weight", flat=True)) == [20, 100]


# --- the runbook editor ---------------------------------------------------------------------------


@pytest.fixture
def canary_version(db):
    return import_runbook(CANARY_RUNBOOK, filename="canary.md").version


def test_the_version_page_offers_the_draft_from_the_runbook(editor, canary_version):
    response = client_for(editor).get(reverse("checklists:version", args=[canary_version.pk]))
    html = response.content.decode()
    assert 'href="#rb-rollout"' in html  # the page links its rollout section
    assert "drafted from lines 13, 17, 19, 25 of the runbook" in html
    assert 'name="stage-0-weight" value="10"' in html and 'name="stage-0-hold" value="15"' in html
    assert 'name="stage-1-weight" value="50"' in html and 'name="stage-1-hold" value="30"' in html
    assert 'name="stage-2-weight" value="100"' in html
    assert 'name="gate-0-name" value="Error rate"' in html
    first_stage = TemplateStep.objects.get(phase__version=canary_version, title="Stage 1 (10%)")
    assert f'<option value="{first_stage.pk}" selected>' in html
    # A draft is only offered: nothing is saved until the editor saves it.
    assert not TemplateStep.objects.filter(phase__version=canary_version, action="rollout").exists()


def test_only_runbook_editors_save_the_plan(editor, canary_version):
    step = TemplateStep.objects.get(phase__version=canary_version, title="Stage 1 (10%)")
    data = plan_post(step=step.pk, stages=[(10, "15"), (100, "0")])
    url = reverse("rollouts:runbook_plan", args=[canary_version.pk])
    reader = release_manager(make_user("reader"))
    assert client_for(reader).get(url).status_code == 200
    assert client_for(reader).post(url, data).status_code == 403
    assert not TemplateStep.objects.filter(phase__version=canary_version, action="rollout").exists()
    assert not RunbookEdit.objects.exists()

    response = client_for(editor).post(url, data)
    assert response.status_code == 302
    assert response["Location"].endswith(f"/runbooks/versions/{canary_version.pk}/#rb-rollout")
    step.refresh_from_db()
    assert step.action == "rollout"
    assert step.action_config == {"strategy": "canary", "router": "manual", "sample": 30,
                                  "stages": [{"weight": 10, "hold": 900}, {"weight": 100, "hold": 0}], "gates": []}  # fmt: skip
    edit = RunbookEdit.objects.get()
    assert edit.actor == editor and edit.action == "step.rollout"
    assert "Stage 1 (10%)" in edit.summary and "10 % → 100 %" in edit.summary
    assert TemplateCodeBlock.objects.filter(step=step, info="warroom").count() == 1


def test_a_bad_plan_in_the_editor_comes_back_on_the_form(editor, canary_version):
    step = TemplateStep.objects.get(phase__version=canary_version, title="Stage 1 (10%)")
    url = reverse("rollouts:runbook_plan", args=[canary_version.pk])
    response = client_for(editor).post(url, plan_post(step=step.pk, stages=[(10, "15"), (60, "0")]), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card rb-rollout" id="rb-rollout"')  # the section, swapped in place
    assert "The last stage must reach 100 % (it ends at 60 %)" in html
    step.refresh_from_db()
    assert step.action == "" and not RunbookEdit.objects.exists()


def test_moving_and_removing_the_rollout(editor, canary_version):
    first = TemplateStep.objects.get(phase__version=canary_version, title="Stage 1 (10%)")
    second = TemplateStep.objects.get(phase__version=canary_version, title="Stage 2 (50%)")
    url = reverse("rollouts:runbook_plan", args=[canary_version.pk])
    client = client_for(editor)
    client.post(url, plan_post(step=first.pk, stages=[(10, "15"), (100, "0")]))
    client.post(url, plan_post(step=second.pk, stages=[(50, "5"), (100, "0")]))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.action, first.action_config) == ("", {})
    assert not first.code_blocks.exists()
    assert second.action == "rollout" and second.action_config["stages"][0] == {"weight": 50, "hold": 300}
    assert client.post(url, {"remove_plan": "1"}).status_code == 302
    second.refresh_from_db()
    assert (second.action, second.code_blocks.count()) == ("", 0)
    assert list(RunbookEdit.objects.order_by("id").values_list("action", flat=True)) == [
        "step.rollout",
        "step.rollout",
        "step.rollout_remove",
    ]


def test_a_deployment_from_the_version_has_the_plan_saved_in_the_editor(editor, canary_version, admin_defined):
    step = TemplateStep.objects.get(phase__version=canary_version, title="Stage 2 (50%)")
    data = plan_post(
        step=step.pk,
        router="edge-router",
        sample="20",
        stages=[(10, "15"), (50, "30"), (100, "0")],
        gates=[{"name": "Error rate", "source": "prom", "query": "errors_ratio", "threshold": "1", "unit": "%",
                "consecutive_bad": "2"}],
    )  # fmt: skip
    assert client_for(editor).post(reverse("rollouts:runbook_plan", args=[canary_version.pk]), data).status_code == 302
    deployment = make_deployment(version=canary_version)
    plan = RolloutPlan.objects.get(deployment=deployment)
    assert plan.step.title == "Stage 2 (50%)"
    assert (plan.router_def, plan.sample_seconds) == (admin_defined["router"], 20)
    assert list(plan.stages.values_list("weight", "hold_seconds")) == [(10, 900), (50, 1800), (100, 0)]
    assert list(plan.gates.values_list("name", "source_def__name", "source_config", "threshold", "consecutive_bad")) == [
        ("Error rate", "prom", {"query": "errors_ratio"}, 1.0, 2)
    ]
