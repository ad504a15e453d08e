"""A deployment that ran: a runbook with timed steps, a gate and a Sign-Off section,
staffed with the usual personas, partly ticked with notes and values."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from checklists.models import ItemKind, Runbook, RunbookVersion, TemplateItem, TemplatePhase, TemplateRole, TemplateStep
from deployments import services
from deployments.models import DeploymentState, Item
from tests.factories import make_user, staff_deployment


def make_report_version(
    *, steps_per_phase: int = 3, items_per_step: int = 4, name: str = "Release runbook", with_sign_off: bool = True
) -> RunbookVersion:
    runbook = Runbook.objects.create(name=name)
    version = RunbookVersion.objects.create(runbook=runbook, number=1, title=name, source_sha256="ab" * 32)
    roles = {
        role: TemplateRole.objects.create(version=version, name=role, position=i)
        for i, role in enumerate(["QA Lead", "DevOps Engineer", "Product Owner", "DBA"])
    }
    offset = -30
    for p_index, (phase_title, role) in enumerate(
        [("Pre-deployment checks", "QA Lead"), ("Deployment", "DevOps Engineer"), ("Verification", "QA Lead")]
    ):
        phase = TemplatePhase.objects.create(version=version, position=p_index, title=phase_title)
        for s in range(steps_per_phase):
            step = TemplateStep.objects.create(
                phase=phase,
                position=s,
                number=f"{p_index + 1}.{s + 1}",
                title=f"{phase_title.split()[0]} step {s + 1}",
                role=roles[role],
                offset_minutes=offset,
                duration_min_minutes=10,
                duration_max_minutes=15,
            )
            offset += 15
            group = TemplateItem.objects.create(step=step, position=0, text=f"Checks for step {p_index + 1}.{s + 1}")
            for i in range(items_per_step):
                TemplateItem.objects.create(
                    step=step, parent=group, position=i + 1, text=f"Verify component {p_index + 1}.{s + 1}.{i + 1}"
                )
            TemplateItem.objects.create(step=step, position=items_per_step + 1, kind=ItemKind.FIELD, text="Time Completed")
        if phase_title == "Deployment":
            gate = TemplateStep.objects.create(
                phase=phase, position=steps_per_phase, title="Go/No-Go decision", role=roles["Product Owner"], is_gate=True
            )
            TemplateItem.objects.create(step=gate, position=0, kind=ItemKind.GATE, text="Decision", options=["GO", "NO-GO"])
    if not with_sign_off:
        return version
    sign_phase = TemplatePhase.objects.create(version=version, position=9, title="Sign-Off")
    sign_step = TemplateStep.objects.create(phase=sign_phase, position=0, title="Sign-Off")
    position = 0
    for label in ["Deployment End Time", "QA Lead", "QA Lead — Date", "Product Owner", "Product Owner — Date"]:
        TemplateItem.objects.create(step=sign_step, position=position, kind=ItemKind.FIELD, text=label)
        position += 1
    TemplateItem.objects.create(
        step=sign_step,
        position=position,
        kind=ItemKind.CHOICE,
        text="Deployment Status",
        options=["Success", "Success with minor issues", "Rolled back"],
    )
    return version


def run_some_of_it(deployment, people) -> None:
    """Start the deployment, tick and fill part of the checklist as the right people."""
    lead = people["lead"]
    services.change_state(deployment.pk, lead, DeploymentState.SCHEDULED)
    services.change_state(deployment.pk, lead, DeploymentState.IN_PROGRESS)
    for item in Item.objects.filter(deployment=deployment, is_group=False).select_related("step__role").order_by("id")[:14]:
        role = item.step.role.name if item.step.role else ""
        actor = {"QA Lead": people["qa"], "DevOps Engineer": people["devops"], "Product Owner": people["po"]}.get(role, lead)
        if item.kind == ItemKind.CHECK:
            note = "Screenshot attached to JIRA-1234" if item.text.endswith(".2") else None
            services.update_item(item.pk, actor, revision=item.revision, checked=True, note=note)
        elif item.kind == ItemKind.FIELD:
            services.update_item(item.pk, actor, revision=item.revision, value="02:45")


@pytest.fixture
def report_crew(db):
    """An in-progress deployment with ticks, notes and field values (its gate is the approvals app's business)."""
    lead = make_user("lead")
    version = make_report_version()
    deployment = services.create_deployment(
        version,
        lead=lead,
        name="Expense Accounts 3.4",
        service="expense-accounts",
        version_label="3.4.0",
        environment="production",
        planned_t0=timezone.now() - timedelta(minutes=20),
        timezone_name="Europe/Berlin",
        window_start=timezone.now() - timedelta(minutes=40),
        window_end=timezone.now() + timedelta(hours=3),
    )
    people = staff_deployment(deployment, lead)
    run_some_of_it(deployment, people)
    deployment.refresh_from_db()
    return deployment, people


@pytest.fixture
def finished_crew(report_crew):
    deployment, people = report_crew
    # Part of the checklist ran (run_some_of_it): completing says so, with the lead's override.
    services.change_state(
        deployment.pk, people["lead"], DeploymentState.COMPLETED, override_reason="the rest was done outside Warroom"
    )
    deployment.refresh_from_db()
    return deployment, people


def pdf_pages_text(path_or_bytes, tmp_path: Path) -> list[str]:
    """The text of each page, as pdftotext reads it (pages are separated by form feeds)."""
    if isinstance(path_or_bytes, bytes):
        target = tmp_path / "report.pdf"
        target.write_bytes(path_or_bytes)
    else:
        target = path_or_bytes
    text = subprocess.run(["pdftotext", "-layout", str(target), "-"], check=True, capture_output=True, text=True).stdout
    return [page for page in text.split("\f") if page.strip()]
