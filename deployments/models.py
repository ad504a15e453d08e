"""A deployment: a snapshot of one runbook version, run live by its participants.

Rows here are changed only through deployments.services (one function per state
change: permission check, transaction, lock, event, broadcast on commit).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from checklists.models import ItemKind, RunbookVersion


class DeploymentState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ABORTED = "aborted", "Aborted"


# Which state may follow which: everything else is refused with a message.
ALLOWED_TRANSITIONS = {
    DeploymentState.DRAFT: {DeploymentState.SCHEDULED, DeploymentState.ABORTED},
    DeploymentState.SCHEDULED: {DeploymentState.DRAFT, DeploymentState.IN_PROGRESS, DeploymentState.ABORTED},
    DeploymentState.IN_PROGRESS: {
        DeploymentState.PAUSED,
        DeploymentState.COMPLETED,
        DeploymentState.ROLLED_BACK,
        DeploymentState.ABORTED,
    },
    DeploymentState.PAUSED: {DeploymentState.IN_PROGRESS, DeploymentState.ROLLED_BACK, DeploymentState.ABORTED},
    DeploymentState.COMPLETED: set(),
    DeploymentState.ROLLED_BACK: set(),
    DeploymentState.ABORTED: set(),
}
FINISHED_STATES = {DeploymentState.COMPLETED, DeploymentState.ROLLED_BACK, DeploymentState.ABORTED}
# Leaving for one of these needs a reason, recorded in the event log.
REASON_STATES = {DeploymentState.PAUSED, DeploymentState.ROLLED_BACK, DeploymentState.ABORTED}
ACTIVE_STATES = {DeploymentState.IN_PROGRESS, DeploymentState.PAUSED}


class Deployment(models.Model):
    name = models.CharField(max_length=200)
    service = models.CharField(max_length=120)
    version_label = models.CharField("version", max_length=120)
    environment = models.CharField(max_length=60, default="production")
    runbook_version = models.ForeignKey(RunbookVersion, on_delete=models.PROTECT, related_name="deployments")
    state = models.CharField(max_length=20, choices=DeploymentState.choices, default=DeploymentState.DRAFT)
    planned_t0 = models.DateTimeField(help_text="Stored in UTC")
    timezone_name = models.CharField(max_length=64, default="UTC", help_text="The zone T-0 was planned in")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # Head of the per-deployment hash chain (see Event); updated under a row lock.
    event_count = models.PositiveIntegerField(default=0)
    last_event_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-planned_t0"]
        permissions = [
            ("manage_deployment", "Lead the deployment: people, T-0, state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_end__isnull=True)
                | models.Q(window_start__isnull=True)
                | models.Q(window_end__gt=models.F("window_start")),
                name="deployment_window_ordered",
            )
        ]

    def __str__(self):
        return self.name

    @property
    def is_finished(self):
        return self.state in FINISHED_STATES

    @property
    def is_active(self):
        return self.state in ACTIVE_STATES


class DeploymentRole(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "name"], name="uniq_deployment_role_name")]

    def __str__(self):
        return self.name


class Participant(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations")
    is_lead = models.BooleanField(default=False)
    roles = models.ManyToManyField(DeploymentRole, blank=True, related_name="participants")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_lead", "user__username"]
        constraints = [models.UniqueConstraint(fields=["deployment", "user"], name="uniq_participant")]

    def __str__(self):
        return f"{self.user} in {self.deployment}"


class EmergencyContact(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="contacts")
    role = models.ForeignKey(DeploymentRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts")
    level = models.PositiveSmallIntegerField(default=1, help_text="Escalation order: 1 is called first")
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    # From an imported runbook: how to reach them as written ("PagerDuty", "#ops-oncall"), when this
    # level is called ("15–30 min" after the start of the incident), and the runbook line.
    channel = models.CharField(max_length=200, blank=True)
    window = models.CharField(max_length=40, blank=True)
    source_line = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        # The escalation order: level 1 first, wherever contacts are listed.
        ordering = ["level", "name", "id"]

    def __str__(self):
        return f"{self.name} (level {self.level})"


class Phase(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="phases")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.title


class Step(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="steps")
    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=500)
    number = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    role = models.ForeignKey(DeploymentRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="steps")
    offset_minutes = models.IntegerField(null=True, blank=True)
    duration_min_minutes = models.PositiveIntegerField(null=True, blank=True)
    duration_max_minutes = models.PositiveIntegerField(null=True, blank=True)
    is_gate = models.BooleanField(default=False)
    action = models.CharField(max_length=20, blank=True)
    action_config = models.JSONField(default=dict, blank=True)
    # Actuals: first item done, and the moment every item was done (cleared on undo).
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)
    late_reported = models.BooleanField(default=False)

    class Meta:
        ordering = ["phase__position", "position", "id"]

    def __str__(self):
        return self.title

    def planned_start(self, t0):
        if self.offset_minutes is None:
            return None
        return t0 + timedelta(minutes=self.offset_minutes)

    def planned_end(self, t0):
        start = self.planned_start(t0)
        duration = self.duration_max_minutes or self.duration_min_minutes
        if start is None or duration is None:
            return None
        return start + timedelta(minutes=duration)

    def is_late(self, t0, now=None):
        end = self.planned_end(t0)
        return end is not None and self.actual_end is None and (now or timezone.now()) > end


class Item(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="items")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="items")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=ItemKind.choices, default=ItemKind.CHECK)
    text = models.TextField()
    number = models.CharField(max_length=40, blank=True)
    options = models.JSONField(default=list, blank=True)
    is_group = models.BooleanField(default=False, help_text="Has children; done when they are")
    # Current state: checked for checkboxes, value for fields, the chosen option for choices/gates.
    checked = models.BooleanField(default=False)
    value = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="Evidence")
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    done_by_system = models.CharField(max_length=120, blank=True, help_text="Set when a task, not a person, did it")
    done_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change: a form posted against an older revision is stale.
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["step_id", "position", "id"]
        indexes = [models.Index(fields=["deployment", "step"])]

    def __str__(self):
        return self.text[:80]

    @property
    def is_done(self):
        if self.kind == ItemKind.CHECK:
            return self.checked
        return bool(self.value)


class CodeBlock(models.Model):
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="code_blocks")
    position = models.PositiveIntegerField(default=0)
    info = models.CharField(max_length=100, blank=True)
    code = models.TextField()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.info or "code"


class Event(models.Model):
    """Append-only, hash-chained log of everything that happened in a deployment.

    PostgreSQL refuses UPDATE and DELETE on this table (see migration 0002); each event stores
    the hash of the one before it, so `verify_events` can name the first link that does
    not hold, and signed checkpoints (ChainCheckpoint) catch a chain rewritten and
    recomputed end to end.
    """

    APPEND_ONLY = True  # setup_db_roles grants the application role SELECT and INSERT only

    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=150, help_text="Who, as shown (kept if the user is renamed)")
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    summary = models.CharField(max_length=500)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["deployment", "seq"]
        constraints = [models.UniqueConstraint(fields=["deployment", "seq"], name="uniq_event_seq")]

    def __str__(self):
        return f"#{self.seq} {self.action}"


class CheckpointReason(models.TextChoices):
    PERIODIC = "periodic", "Periodic (beat)"
    REPORT = "report", "Signed report"


class ChainCheckpoint(models.Model):
    """A signed statement "at this time, deployment D's chain ended in event #N with hash H".

    Kept outside the rows it guards: whoever rewrites the events and recomputes every
    hash cannot re-sign the checkpoints without Warroom's signing key, so
    ``verify_chain`` names the first checkpoint the log no longer matches. Append-only
    like the event log (migration 0004, ``setup_db_roles``).
    """

    APPEND_ONLY = True

    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="checkpoints")
    # A plain id, not a foreign key: the checkpoint must outlive whatever is done to the events.
    head_event_id = models.BigIntegerField(help_text="Row id of the head event when taken")
    seq = models.PositiveIntegerField(help_text="Events in the chain when taken (the head event's seq)")
    head_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=10, choices=CheckpointReason.choices)
    taken_at = models.DateTimeField()
    signer = models.CharField(max_length=120, help_text="Which key signed: the report key's fingerprint, or the secret-key HMAC")
    signature = models.TextField(help_text="Base64 signature over the canonical statement")

    class Meta:
        ordering = ["deployment", "seq", "id"]
        indexes = [models.Index(fields=["deployment", "seq"])]

    def __str__(self):
        return f"checkpoint #{self.pk} of {self.deployment_id} at event #{self.seq}"
