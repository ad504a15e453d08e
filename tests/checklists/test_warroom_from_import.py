"""An imported runbook becomes a war room without hand edits: what was recognised (and kept on the
import review) reaches the deployment as required approvals, gates with their criteria, roles a
person can hold, contacts by escalation level and a draft rollout plan.

The two runbooks under ``runbooks/`` are written in styles unlike the other fixtures: a change
request with bold labels and a wave-by-wave canary (``change-request-payments.md``), and a
table-heavy release with ``* [ ]`` items, a HOLD POINT and rollback triggers
(``mobile-backend-tables.md``). The expected values below were read off the files by hand.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from approvals import services as approval_services
from approvals.models import Gate, RequiredApproval
from checklists.importing import export_markdown, import_runbook
from checklists.models import RunbookVersion
from checklists.review import apply_choices, blocks_start, choice_key
from deployments import services as deployment_services
from deployments.models import DeploymentState, EmergencyContact
from deployments.services import InvalidChange
from rollouts.models import RolloutPlan, RolloutState
from tests.factories import make_deployment, make_user

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"
PAYMENTS = RUNBOOKS / "change-request-payments.md"
MOBILE = RUNBOOKS / "mobile-backend-tables.md"


def deployment_from(path: Path, **import_options):
    version = import_runbook(path.read_bytes(), filename=path.name, **import_options).version
    return make_deployment(version=version)


def start(deployment, lead):
    deployment.refresh_from_db()
    if deployment.state == DeploymentState.DRAFT:
        deployment_services.change_state(deployment.pk, lead, DeploymentState.SCHEDULED)
    return deployment_services.change_state(deployment.pk, lead, DeploymentState.IN_PROGRESS)


# --- the change request ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_change_request_approvals_block_the_start_until_given_and_the_sign_off_section_does_not():
    deployment = deployment_from(PAYMENTS)
    lead = deployment.participants.get(is_lead=True).user
    approvals = list(RequiredApproval.objects.filter(deployment=deployment).select_related("role"))
    # "## Pre-Deployment Approvals": three lines before the work. "## Deployment Sign-Off" at the end
    # (Engineering Manager, QA Lead with blanks) confirms the outcome and must not block the start.
    assert [(a.label, a.role.name if a.role else None) for a in approvals] == [
        ("Security team sign-off", "Security team"),
        ("Finance Controller: Approved for release", "Finance Controller"),
        ("Product Owner approval", "Product Owner"),
    ]
    assert all(a.item_id for a in approvals)  # each keeps its runbook line, ticked while given
    with pytest.raises(InvalidChange, match="Missing approvals: Security team sign-off"):
        start(deployment, lead)
    for approval in approvals:
        holder = make_user(approval.role.name.split()[0].lower())
        deployment_services.set_participant(deployment, lead, holder, role_names=[approval.role.name])
        approval_services.give_approval(approval.pk, holder, statement="Reviewed CR-2291")
    assert start(deployment, lead).state == DeploymentState.IN_PROGRESS


@pytest.mark.django_db
def test_change_request_gate_keeps_its_proceed_if_criteria():
    deployment = deployment_from(PAYMENTS)
    gates = list(Gate.objects.filter(deployment=deployment))
    assert len(gates) == 1
    assert gates[0].criteria == "reconciliation shows zero mismatched ledger rows"
    assert "Proceed if reconciliation shows zero mismatched ledger rows" in gates[0].title
    assert gates[0].state == "open" and gates[0].voter_roles.count() == deployment.roles.count()


@pytest.mark.django_db
def test_change_request_roles_can_be_held_and_contacts_have_levels():
    deployment = deployment_from(PAYMENTS)
    lead = deployment.participants.get(is_lead=True).user
    roles = set(deployment.roles.values_list("name", flat=True))
    assert {"Security team", "Finance Controller", "Product Owner", "Engineering Manager", "QA Lead"} <= roles
    qa = make_user("qa")
    deployment_services.set_participant(deployment, lead, qa, role_names=["QA Lead"])  # QA is not an observer
    contacts = list(EmergencyContact.objects.filter(deployment=deployment).order_by("level"))
    assert [(c.level, c.name, c.channel, c.window) for c in contacts] == [
        (1, "Payments on-call", "PagerDuty", "0–10 min"),
        (2, "Payments team lead", "Slack", "10–30 min"),
        (3, "Head of Engineering", "phone", ""),
    ]
    assert contacts[0].role.name == "Payments on-call" and contacts[0].source_line == 40


@pytest.mark.django_db
def test_change_request_waves_become_a_draft_manual_rollout_with_the_thresholds_as_gates():
    deployment = deployment_from(PAYMENTS)
    plan = RolloutPlan.objects.get(deployment=deployment)
    assert plan.state == RolloutState.DRAFT and plan.router == "manual" and plan.router_def is None
    # Wave 1 (2%) held 20 minutes, Wave 2 (20%) held 1 hour, then all traffic.
    assert [(s.weight, s.hold_seconds) for s in plan.stages.all()] == [(2, 1200), (20, 3600), (100, 0)]
    assert [(g.name, g.comparator, g.threshold, g.unit, g.source, g.source_def) for g in plan.gates.all()] == [
        ("Error rate", "<", 0.5, "%", "manual", None),
        ("p99 latency", "<", 800, "ms", "manual", None),
    ]
    assert plan.step.title == "Wave 1 (2%)"


# --- the table-heavy release ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_table_release_becomes_a_war_room():
    deployment = deployment_from(MOBILE)
    lead = deployment.participants.get(is_lead=True).user
    # "* [ ] SRE team approval" before the release blocks; "* [ ] Support sign-off" under "Close-out" does not.
    approvals = list(RequiredApproval.objects.filter(deployment=deployment).select_related("role"))
    assert [(a.label, a.role.name) for a in approvals] == [("SRE team approval", "SRE team")]
    with pytest.raises(InvalidChange, match="Missing approvals: SRE team approval"):
        start(deployment, lead)
    # The HOLD POINT is a gate; it has no criteria written.
    assert list(Gate.objects.filter(deployment=deployment).values_list("title", "criteria")) == [
        ("HOLD POINT - Go/No-Go decision by the release manager before any traffic moves.", "")
    ]
    # "Release manager" and "release manager" are one role; "[Name]" is a field, never a role.
    roles = set(deployment.roles.values_list("name", flat=True))
    assert {"Release manager", "SRE team", "Support", "SRE on-call", "Mobile lead"} <= roles
    assert not any("[" in name or name.casefold() == "name" for name in roles)
    assert "release manager" not in roles
    contacts = [(c.level, c.name, c.channel, c.window) for c in deployment.contacts.order_by("level")]
    assert contacts == [(1, "SRE on-call", "PagerDuty", "0–5 min"), (2, "Mobile lead", "Slack", "5–20 min")]
    plan = RolloutPlan.objects.get(deployment=deployment)
    assert plan.state == RolloutState.DRAFT and plan.router == "manual"
    assert [(s.weight, s.hold_seconds) for s in plan.stages.all()] == [(10, 900), (50, 1800), (100, 0)]
    # "Rollback if crash-free sessions < 99.5% or API error rate > 2%" states the failure: the gates hold the opposite.
    assert [(g.name, g.comparator, g.threshold) for g in plan.gates.all()] == [
        ("crash-free sessions", ">=", 99.5),
        ("API error rate", "<=", 2),
    ]


@pytest.mark.django_db
def test_thresholds_without_stages_are_offered_on_the_plan_page():
    runbook = (
        "# Config push\n\n## Push\n\n- [ ] Push the config\n- [ ] Watch the dashboards\n\n"
        "**Healthy while**:\n\n- Error rate < 1%\n- p95 latency < 300ms\n"
    )
    version = import_runbook(runbook, filename="config.md").version
    deployment = make_deployment(version=version)
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()  # no stages: no plan is made up
    lead = deployment.participants.get(is_lead=True).user
    client = Client()
    client.force_login(lead)
    url = reverse("rollouts:plan", args=[deployment.pk])
    html = client.get(url).content.decode()
    assert "Thresholds the runbook names" in html
    assert "Error rate &lt; 1 %" in html and "p95 latency &lt; 300 ms" in html
    # "Add to the plan" (a submit button: no JavaScript needed) puts it in the form as a gate a person reads.
    empty_form = {"strategy": "canary", "router": "manual", "sample": "30", "stage-TOTAL_FORMS": "0",
                  "stage-INITIAL_FORMS": "0", "gate-TOTAL_FORMS": "0", "gate-INITIAL_FORMS": "0"}  # fmt: skip
    html = client.post(url, {**empty_form, "add_suggested": "0"}).content.decode()
    assert 'name="gate-0-name" value="Error rate"' in html
    assert 'name="gate-0-threshold" value="1"' in html
    assert re.search(r'name="gate-0-source"[^>]*>\s*<option value="manual" selected>', html)
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


# --- where an approval stands ---------------------------------------------------------------------------


SECTIONS = [
    {"phase": 0, "step": 0, "line": 3, "phase_title": "Approvals", "title": "Approvals", "offset_minutes": None,
     "has_items": True},
    {"phase": 1, "step": 0, "line": 10, "phase_title": "Deploy", "title": "Deploy", "offset_minutes": 0, "has_items": True},
    {"phase": 2, "step": 0, "line": 20, "phase_title": "Sign-off", "title": "Sign-off", "offset_minutes": None,
     "has_items": True},
    {"phase": 3, "step": 0, "line": 30, "phase_title": "Wrap-up", "title": "Pre-production sign-off", "offset_minutes": None,
     "has_items": True},
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "blocks", "why"),
    [
        (4, True, "before the work, no heading saying otherwise"),
        (12, False, "in the step timed T+0: given during the deployment"),
        (21, False, "a closing Sign-off section with work above it"),
        (31, True, "a heading that says it comes first wins"),
        (1, True, "above every heading"),
    ],
)
def test_where_an_approval_stands(line, blocks, why):
    assert blocks_start({"line": line}, SECTIONS) is blocks, why


def test_a_sign_off_section_before_any_work_blocks_the_start():
    sections = [dict(SECTIONS[2], phase=0, line=3), dict(SECTIONS[1], phase=1, line=10)]
    assert blocks_start({"line": 4}, sections) is True


# --- the review: a box unticked drops the finding -------------------------------------------------------


def test_apply_choices_drops_unticked_findings_and_splits_an_unticked_merge():
    found = {
        "gates": [{"line": 3, "text": "GO", "how": "GO / NO-GO boxes"}, {"line": 5, "text": "Go/No-Go", "how": "go/no-go"}],
        "approvals": [{"line": 7, "role": "QA"}, {"line": 8, "role": "PO"}],
        "roles": [{"name": "QA Lead", "lines": [7], "variants": ["QA", "QA Lead"]}],
        "role_merges": [{"name": "QA Lead", "merged": ["QA"]}],
    }
    kept = {choice_key("gates", 1), choice_key("approvals", 1)}
    result = apply_choices(found, kept)
    assert result["gates"] == found["gates"]  # a "☐ GO ☐ NO-GO" line has no box: it is a gate in any case
    assert result["approvals"] == [{"line": 8, "role": "PO"}]
    assert result["dropped"] == {"approvals": [{"line": 7, "role": "QA"}], "role_merges": found["role_merges"]}
    assert [r["name"] for r in result["roles"]] == ["QA", "QA Lead"] and result["role_merges"] == []
    assert apply_choices(found, None) == found


@pytest.fixture
def editor(db):
    user = make_user("editor")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def test_the_preview_offers_a_ticked_box_per_finding_and_an_unticked_one_is_left_out(editor):
    client = Client()
    client.force_login(editor)
    data = PAYMENTS.read_bytes()
    preview = client.post(reverse("checklists:import"), {"file": SimpleUploadedFile(PAYMENTS.name, data), "dry_run": "on"})
    html = preview.content.decode()
    assert preview.status_code == 200 and not RunbookVersion.objects.exists()
    for key in ("gates:0", "approvals:0", "approvals:4", "contacts:2", "thresholds:1", "rollout_stages:1"):
        assert f'name="keep" value="{key}"' in html, key
    assert len(re.findall(r'name="keep"[^>]*\bchecked\b', html)) == html.count('name="keep"')  # ticked by default
    assert base64.b64encode(data).decode() in html  # the same bytes come back with the choices
    # Untick the Product Owner's approval (approvals:2), the third contact and the second wave.
    every = [key.split('"')[0] for key in html.split('name="keep" value="')[1:]]
    kept = [key for key in every if key not in ("approvals:2", "contacts:2", "rollout_stages:1")]
    response = client.post(
        reverse("checklists:import"),
        {"source": base64.b64encode(data).decode(), "filename": PAYMENTS.name, "keep": kept},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    version = RunbookVersion.objects.get()
    assert version.source_filename == PAYMENTS.name
    assert [a["line"] for a in version.recognised["dropped"]["approvals"]] == [9]
    assert [c["line"] for c in version.recognised["dropped"]["contacts"]] == [42]
    assert [s["line"] for s in version.recognised["dropped"]["rollout_stages"]] == [32]
    deployment = make_deployment(version=version)
    assert [a.label for a in deployment.required_approvals.all()] == [
        "Security team sign-off",
        "Finance Controller: Approved for release",
    ]
    assert deployment.contacts.count() == 2
    assert [s.weight for s in deployment.rollout.stages.all()] == [2, 100]


def test_a_review_that_did_not_come_back_intact_is_refused(editor):
    client = Client()
    client.force_login(editor)
    response = client.post(reverse("checklists:import"), {"source": "not base64!", "keep": ["gates:0"]})
    assert response.status_code == 400 and "did not come back intact" in response.content.decode()
    assert not RunbookVersion.objects.exists()


# --- re-import and export -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", [PAYMENTS, MOBILE])
def test_an_exported_version_imports_back_to_the_same_war_room(path):
    first = import_runbook(path.read_bytes(), filename=path.name).version
    again = import_runbook(export_markdown(first), filename=path.name, runbook=first.runbook).version
    assert again.number == 2

    def war_room(version):
        deployment = make_deployment(version=version)
        return {
            "approvals": [(a.label, a.role.name if a.role else None) for a in deployment.required_approvals.all()],
            "gates": list(deployment.gates.values_list("title", "criteria")),
            "roles": sorted(deployment.roles.values_list("name", flat=True)),
            "contacts": list(deployment.contacts.order_by("level").values_list("level", "name", "channel", "window")),
            "stages": [(s.weight, s.hold_seconds) for s in deployment.rollout.stages.all()],
            "metric_gates": list(deployment.rollout.gates.values_list("name", "comparator", "threshold")),
        }

    assert war_room(again) == war_room(first)


@pytest.mark.django_db
def test_a_version_imported_before_findings_were_placed_keeps_its_old_set_up():
    """Its findings say nothing of where they stand, so none of them blocks a start or becomes a gate or plan."""
    version = import_runbook(PAYMENTS.read_bytes(), filename=PAYMENTS.name).version
    version.recognised = {key: value for key, value in version.recognised.items() if key != "placed"}
    version.save(update_fields=["recognised"])
    deployment = make_deployment(version=version)
    assert not deployment.required_approvals.exists() and not deployment.gates.exists()
    assert not RolloutPlan.objects.filter(deployment=deployment).exists()


@pytest.mark.django_db
def test_a_sign_off_blank_before_the_start_is_an_approval_given_in_the_war_room_not_a_box():
    runbook = (
        "# Hotfix 3.1.4\n\n## Required approvals\n\nCAB chair: __________ Date: ________\n\n"
        "## Deploy (T+0)\n\n- [ ] Ship the hotfix\n- [ ] **Decision point**: proceed if the canary is clean\n"
    )
    version = import_runbook(runbook, filename="hotfix.md").version
    deployment = make_deployment(version=version)
    lead = deployment.participants.get(is_lead=True).user
    approval = deployment.required_approvals.get()
    assert (approval.label, approval.role.name, approval.item) == ("CAB chair: __________ Date: ________", "CAB chair", None)
    chair = make_user("chair")
    deployment_services.set_participant(deployment, lead, chair, role_names=["CAB chair"])
    approval_services.give_approval(approval.pk, chair, statement="CAB-88 approved")
    assert start(deployment, lead).state == DeploymentState.IN_PROGRESS
    # The decision point stands at its step: votes are cast against the lines up to it.
    gate = deployment.gates.get()
    assert gate.step.title.startswith("Deploy") and gate.criteria == "the canary is clean"
    assert {i.text for i in approval_services.evidence_items(gate)} >= {"Ship the hotfix"}


@pytest.mark.django_db
def test_a_dropped_approval_under_a_required_approvals_step_stays_out():
    path = Path(__file__).resolve().parents[2] / "checklists" / "demo" / "expense-accounts-procedure.md"
    data = path.read_bytes()
    found = import_runbook(data, dry_run=True).parsed.found
    product_owner = next(i for i, a in enumerate(found["approvals"]) if a["text"] == "Product Owner approval")
    kept = {choice_key("approvals", i) for i in range(len(found["approvals"])) if i != product_owner}
    kept |= {choice_key(kind, i) for kind in ("gates", "contacts", "thresholds") for i in range(len(found[kind]))}
    deployment = make_deployment(version=import_runbook(data, filename=path.name, kept=kept).version)
    labels = list(deployment.required_approvals.values_list("label", flat=True))
    assert "Product Owner approval" not in labels and "Security team approval" in labels
    assert len(labels) == 3
