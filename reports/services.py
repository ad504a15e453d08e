"""Every state change of the reports app, one function each.

Sign-offs are events in the deployment's chain; report jobs are bookkeeping of who
asked for which file and are deliberately not events (see reports.models).
"""

from __future__ import annotations

import hashlib
import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from deployments import board, live
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import Deployment, DeploymentRole
from deployments.permissions import PermissionDenied, access_for
from deployments.services import InvalidChange
from reports import signoffs, tasks, versions
from reports.exports import export_report
from reports.formatting import person, reader_zone
from reports.models import JOB_STALE_AFTER, JobState, Outcome, Paper, ReportJob, SignOff

log = logging.getLogger(__name__)

STATEMENT_MAX = 2000


class WrongPassword(InvalidChange):
    """A sign-off is confirmed with the signer's password; this one was wrong."""

    reason = "wrong password"


class SignOffLockedOut(WrongPassword):
    """Too many wrong passwords for the account or from the address: refused even when right."""

    reason = "locked out after too many wrong passwords"


def _plain_password_check(user, password: str) -> bool:
    return bool(password) and user.check_password(password)


# --- sign-offs -------------------------------------------------------------------------


def sign_off(
    deployment_id: int, user, *, role_name: str, outcome: str, statement: str, password: str, password_check=None
) -> SignOff:
    """Record one role's final sign-off: the signer confirms the outcome with their password.

    Raises Deployment.DoesNotExist for people who cannot see the deployment (a 404,
    as everywhere), PermissionDenied for a role they do not hold, WrongPassword (or
    SignOffLockedOut), and InvalidChange (deployments.services) for everything else.
    Nothing of the sign-off is written unless all checks pass; a refused password is
    recorded in the event log as "signoff.failed" (never the password itself).

    `password_check(user, password) -> bool` may raise SignOffLockedOut; the views pass one
    that counts wrong passwords against the login lockout (warroom.auth.confirm_password).
    Not one transaction on purpose: the password is checked between the checks and the
    write, so a wrong one stays counted (and recorded) although the sign-off is not.
    """
    _checked_sign_off(deployment_id, user, role_name=role_name, outcome=outcome, statement=statement)
    # Last, so a wrong password says only that, and never after a partial write.
    try:
        if not (password_check or _plain_password_check)(user, password):
            raise WrongPassword("That password is not correct; the sign-off was not recorded.")
    except WrongPassword as refused:
        record_failed_sign_off(deployment_id, user, role_name=role_name, reason=refused.reason)
        raise
    return _write_sign_off(deployment_id, user, role_name=role_name, outcome=outcome, statement=statement)


@transaction.atomic
def record_failed_sign_off(deployment_id: int, user, *, role_name: str, reason: str) -> None:
    """A refused sign-off password, in the deployment's event log: who, for which role, why."""
    record_event(
        deployment_id,
        actor=user,
        action="signoff.failed",
        summary=f"Sign-off as {role_name[:100]} refused: {reason}",
        after={"role": role_name[:100], "reason": reason},
    )
    live.publish_on_commit(deployment_id, lambda: board.render_header_push(deployment_id))


def _checked_sign_off(deployment_id: int, user, *, role_name, outcome, statement, lock: bool = False):
    """Everything but the password; returns (deployment, role, statement stripped)."""
    deployment = lock_deployment(deployment_id) if lock else Deployment.objects.get(pk=deployment_id)
    access = access_for(user, deployment)
    if not access.can_view:
        raise Deployment.DoesNotExist
    role = DeploymentRole.objects.filter(deployment=deployment, name=role_name).first()
    if role is None:
        raise InvalidChange(f"There is no role “{role_name[:100]}” in this deployment.")
    if role.pk not in access.role_ids:
        raise PermissionDenied(f"Only someone holding the {role.name} role may sign off for it.")
    if role not in signoffs.requested_roles(deployment):
        raise InvalidChange(f"The runbook does not ask the {role.name} to sign off.")
    if not deployment.is_finished:
        raise InvalidChange("Sign-offs confirm the outcome: they open once the deployment has finished.")
    if outcome not in Outcome.values:
        raise InvalidChange(f"Choose an outcome: {', '.join(Outcome.labels)}.")
    statement = statement.strip()
    if not statement:
        raise InvalidChange("Write a statement: what you confirm, in your own words.")
    if len(statement) > STATEMENT_MAX:
        raise InvalidChange(f"That statement is too long ({STATEMENT_MAX:,} characters at most).")
    existing = SignOff.objects.filter(deployment=deployment, role=role).first()
    if existing is not None:
        raise InvalidChange(f"The {role.name} sign-off was already given by {existing.signer_name}.")
    return deployment, role, statement


@transaction.atomic
def _write_sign_off(deployment_id: int, user, *, role_name, outcome, statement) -> SignOff:
    # Checked again under the row lock: someone may have signed meanwhile.
    deployment, role, statement = _checked_sign_off(
        deployment_id, user, role_name=role_name, outcome=outcome, statement=statement, lock=True
    )
    signed = SignOff.objects.create(
        deployment=deployment,
        role=role,
        user=user,
        signer_name=person(user),
        outcome=outcome,
        statement=statement,
        signed_at=timezone.now(),
    )
    record_event(
        deployment.pk,
        actor=user,
        action="signoff.given",
        obj=signed,
        summary=f"{role.name} signed off: {Outcome(outcome).label} — “{statement[:200]}”",
        after={"role": role.name, "outcome": outcome, "statement": statement, "signed_at": signed.signed_at},
    )
    # The war room's event list shows it at once.
    live.publish_on_commit(deployment.pk, lambda: board.render_header_push(deployment.pk))
    return signed


# --- report jobs -----------------------------------------------------------------------


@transaction.atomic
def request_report(deployment_id: int, user, *, paper: str = Paper.A4, zone: str = "") -> tuple[ReportJob, bool]:
    """Queue a signed PDF for a participant; the worker makes it (see reports.tasks).

    Returns (job, created). A second request from the same person while theirs is still
    waiting returns that job, so a double click makes one file.
    """
    deployment = Deployment.objects.get(pk=deployment_id)
    if not access_for(user, deployment).can_view:
        raise Deployment.DoesNotExist
    if paper not in Paper.values:
        raise InvalidChange(f"Unknown paper size {paper!r}: use {', '.join(Paper.values)}.")
    zone = reader_zone(zone, deployment.timezone_name)
    pending = ReportJob.objects.filter(
        deployment=deployment,
        paper=paper,
        zone=zone,
        state__in=[JobState.QUEUED, JobState.RUNNING],
        requested_by=user,
        created_at__gt=timezone.now() - JOB_STALE_AFTER,
    ).first()
    if pending is not None:
        return pending, False
    job = ReportJob.objects.create(deployment=deployment, requested_by=user, paper=paper, zone=zone)
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job, True


def _enqueue(job_id: int) -> None:
    tasks.render_report.delay(job_id=job_id)


def claim_report_job(job_id: int) -> bool:
    """Queued → running, once: a redelivered task finds it claimed and does nothing."""
    return bool(
        ReportJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.RUNNING, started_at=timezone.now(), stage="Starting", progress=1
        )
    )


def report_job_progress(job_id: int, percent: int, stage: str) -> None:
    ReportJob.objects.filter(pk=job_id, state=JobState.RUNNING).update(progress=max(1, min(percent, 99)), stage=stage[:120])


def run_report_job(job_id: int) -> ReportJob:
    """Render, sign and store the PDF of a claimed job; a failure is recorded on the job."""
    job = ReportJob.objects.get(pk=job_id)
    try:
        made = export_report(
            job.deployment_id,
            "pdf",
            paper=job.paper,
            zone=job.zone or None,
            progress=lambda p, stage: report_job_progress(job_id, p, stage),
            version=lambda record: assign_report_version(job_id, record),
        )
    except Exception as exc:
        log.exception("report job %s failed", job_id)
        fail_report_job(job_id, f"{type(exc).__name__}: {exc}")
        raise
    return complete_report_job(job_id, made.content, filename=made.filename, record=made.record, pages=made.pages)


@transaction.atomic
def assign_report_version(job_id: int, record: dict) -> dict | None:
    """Which version of the final report the job's record is, decided before it is printed.

    The record a finished deployment's job collected is compared, by the head of the event
    log it quotes, with the versions already issued (or being made): the same head is the
    same version (another paper size or time zone); a new head is the next number, with what
    changed since the version before in words (reports.versions). Interim reports are not
    versions. Under the deployment's lock, so two jobs never take one number for two records.
    Returns the record's ``version``: number, changes, and the version it follows.
    """
    lock_deployment_of(ReportJob, job_id)  # deployments/locks.py: the deployment first
    job = ReportJob.objects.select_for_update().get(pk=job_id)
    chain = record["chain"]
    job.interim, job.event_count, job.final_hash = record["interim"], chain["count"], chain["final_hash"]
    if record["interim"]:
        job.save(update_fields=["interim", "event_count", "final_hash"])
        return None
    issued = (
        ReportJob.objects.filter(deployment_id=job.deployment_id, version__isnull=False)
        .exclude(pk=job.pk)
        .exclude(state=JobState.FAILED)
    )
    same = issued.filter(event_count=chain["count"], final_hash=chain["final_hash"]).order_by("version", "id").first()
    if same is not None:
        job.version, job.changes, job.contents = same.version, same.changes, same.contents
    else:
        latest = issued.order_by("-version", "-id").first()
        job.version = latest.version + 1 if latest else 1
        job.contents = versions.content_digests(record)
        job.changes = versions.describe_changes(
            latest.contents if latest else None, record, events_before=latest.event_count if latest else None
        )
    job.save(update_fields=["interim", "event_count", "final_hash", "version", "changes", "contents"])
    # Every job of one version quotes the same head: any of them tells what this one follows.
    before = issued.filter(version=job.version - 1).order_by("id").first() if job.version > 1 else None
    return {
        "number": job.version,
        "changes": job.changes,
        "follows": {"number": before.version, "events": before.event_count, "final_hash": before.final_hash} if before else None,
    }


@transaction.atomic
def complete_report_job(job_id: int, content: bytes, *, filename: str, record: dict, pages: int | None) -> ReportJob:
    lock_deployment_of(ReportJob, job_id)  # deployments/locks.py: the deployment first
    job = ReportJob.objects.select_for_update().get(pk=job_id)
    if job.state != JobState.RUNNING:
        return job  # cancelled or finished by someone else meanwhile
    job.file.save(f"{job.deployment_id}/{job.pk}-{filename}", ContentFile(content), save=False)
    job.state = JobState.DONE
    job.progress = 100
    job.stage = "Ready"
    job.finished_at = timezone.now()
    job.size = len(content)
    job.sha256 = hashlib.sha256(content).hexdigest()
    job.pages = pages
    job.interim = record["interim"]
    job.event_count = record["chain"]["count"]
    job.final_hash = record["chain"]["final_hash"]
    job.save()
    return job


def fail_report_job(job_id: int, error: str) -> None:
    ReportJob.objects.filter(pk=job_id, state__in=[JobState.QUEUED, JobState.RUNNING]).update(
        state=JobState.FAILED, error=error[:2000], stage="Failed", finished_at=timezone.now()
    )
