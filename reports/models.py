"""Final sign-offs and report jobs.

Rows here change only through reports.services. A sign-off is also an event in
the deployment's hash-chained log; a report job is not (exporting must not move
the chain, or every report would stop matching the records the moment it exists).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from deployments.models import Deployment, DeploymentRole


class Outcome(models.TextChoices):
    """What a signer confirms, as the runbooks' "Deployment Status" line offers it."""

    SUCCESS = "success", "Success"
    SUCCESS_WITH_ISSUES = "success_with_issues", "Success with minor issues"
    ROLLED_BACK = "rolled_back", "Rolled back"


class SignOff(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="sign_offs")
    role = models.ForeignKey(DeploymentRole, on_delete=models.PROTECT, related_name="sign_offs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The name as signed, kept if the account is renamed later.
    signer_name = models.CharField(max_length=150)
    outcome = models.CharField(max_length=24, choices=Outcome.choices)
    statement = models.TextField()
    signed_at = models.DateTimeField()

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "role"], name="uniq_signoff_per_role")]

    def __str__(self):
        return f"{self.role} signed {self.deployment}"


# A job with no result after this long lost its worker (killed, redeployed): the page
# stops polling it and a new request makes a new job instead of waiting on it.
JOB_STALE_AFTER = timedelta(minutes=15)


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Ready"
    FAILED = "failed", "Failed"


class Paper(models.TextChoices):
    A4 = "a4", "A4"
    LETTER = "letter", "US Letter"


class ReportJob(models.Model):
    """One signed PDF being made on a worker; the page polls it until the file is there."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="report_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    paper = models.CharField(max_length=10, choices=Paper.choices, default=Paper.A4)
    zone = models.CharField(max_length=64, blank=True, help_text="Time zone the reader picked (blank: the deployment's)")
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent")
    stage = models.CharField(max_length=120, blank=True, help_text="What the worker is doing, in words")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the finished file holds.
    file = models.FileField(upload_to="reports/", blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    interim = models.BooleanField(default=False)
    event_count = models.PositiveIntegerField(null=True, blank=True)
    final_hash = models.CharField(max_length=64, blank=True)
    # Versions of the final report (see reports.versions): a finished deployment's report is
    # version 1 when first signed; a report made after the record moved on (sign-offs, the
    # review) is the next version, and says what changed. Copies of the same record (another
    # paper size or time zone) share their version. Interim reports have none.
    version = models.PositiveIntegerField(null=True, blank=True)
    changes = models.CharField(max_length=300, blank=True, help_text="What changed since the version before, in words")
    contents = models.JSONField(default=dict, blank=True, help_text="Digest per part of the record, to tell what changed")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["deployment", "-created_at"])]

    def __str__(self):
        version = f" v{self.version}" if self.version else ""
        return f"Report {self.pk}{version} of {self.deployment_id} ({self.state})"

    @property
    def is_stale(self):
        return self.state in (JobState.QUEUED, JobState.RUNNING) and timezone.now() - self.created_at > JOB_STALE_AFTER

    @property
    def is_pending(self):
        return self.state in (JobState.QUEUED, JobState.RUNNING) and not self.is_stale
