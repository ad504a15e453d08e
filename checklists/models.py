"""Runbook templates: a runbook has versions; a version holds phases → steps → items.

A deployment snapshots one version (see deployments.models), so editing a template
never changes a deployment that was created from it.
"""

from django.conf import settings
from django.db import models


class ItemKind(models.TextChoices):
    CHECK = "check", "Checkbox"
    FIELD = "field", "Field"
    CHOICE = "choice", "Choice"
    GATE = "gate", "Go/no-go gate"


class StepAction(models.TextChoices):
    """Automated work a step can carry, run by a Celery worker (see rollouts)."""

    BACKUP = "backup", "Database backup"
    MIGRATE = "migrate", "Migrations"
    SMOKE = "smoke", "Smoke checks"
    MAINTENANCE_ON = "maintenance_on", "Maintenance mode on"
    MAINTENANCE_OFF = "maintenance_off", "Maintenance mode off"
    COMMAND = "command", "Command"
    ROLLOUT = "rollout", "Traffic rollout"


class Runbook(models.Model):
    name = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def latest_version(self):
        return self.versions.order_by("-number").first()


class RunbookVersion(models.Model):
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    source_filename = models.CharField(max_length=255, blank=True)
    source_sha256 = models.CharField(max_length=64, blank=True)
    # What the importer recognised in the source, kind by kind with source lines (gates, approvals,
    # timeline, roles and their merges, contacts, thresholds, rollout stages, fields, repairs).
    recognised = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["runbook", "-number"]
        constraints = [models.UniqueConstraint(fields=["runbook", "number"], name="uniq_runbook_version_number")]

    def __str__(self):
        return f"{self.title} v{self.number}"


class TemplateRole(models.Model):
    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="uniq_template_role_name")]

    def __str__(self):
        return self.name


class TemplatePhase(models.Model):
    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="phases")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.title


class TemplateStep(models.Model):
    phase = models.ForeignKey(TemplatePhase, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=500)
    number = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    role = models.ForeignKey(TemplateRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="steps")
    offset_minutes = models.IntegerField(null=True, blank=True, help_text="Planned start relative to T-0")
    duration_min_minutes = models.PositiveIntegerField(null=True, blank=True)
    duration_max_minutes = models.PositiveIntegerField(null=True, blank=True)
    is_gate = models.BooleanField(default=False, help_text="A go/no-go decision point")
    action = models.CharField(max_length=20, choices=StepAction.choices, blank=True)
    action_config = models.JSONField(default=dict, blank=True, help_text="Smoke checks, command name, …")
    # Where the step sat in the Markdown, so an export writes it back the same way.
    section = models.CharField(max_length=500, blank=True, help_text="Title of the empty heading(s) above the step")
    implicit = models.BooleanField(default=False, help_text="Made from content before the phase's first step heading")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.title


class TemplateItem(models.Model):
    step = models.ForeignKey(TemplateStep, on_delete=models.CASCADE, related_name="items")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, choices=ItemKind.choices, default=ItemKind.CHECK)
    text = models.TextField()
    number = models.CharField(max_length=40, blank=True)
    initially_checked = models.BooleanField(default=False)
    options = models.JSONField(default=list, blank=True)
    # How the item was written, so an export writes it back the same way.
    group = models.TextField(blank=True, help_text="Text of the unboxed list entry the checkbox sits under")
    on_item = models.BooleanField(default=False, help_text="A blank or choice written on the checkbox line before it")
    hint = models.CharField(max_length=300, blank=True, help_text="Text after a field's blank, e.g. “(date/time)”")
    option_notes = models.JSONField(default=list, blank=True, help_text="Per option of a choice or gate, e.g. “(postpone)”")
    selected = models.JSONField(default=list, blank=True, help_text="Options of a choice or gate ticked in the source")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.text[:80]


class TemplateCodeBlock(models.Model):
    step = models.ForeignKey(TemplateStep, on_delete=models.CASCADE, related_name="code_blocks")
    position = models.PositiveIntegerField(default=0)
    info = models.CharField(max_length=100, blank=True)
    code = models.TextField()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.info or "code"


class TemplateTimelineEntry(models.Model):
    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="timeline")
    position = models.PositiveIntegerField(default=0)
    label = models.CharField(max_length=60)
    offset_minutes = models.IntegerField(null=True, blank=True)
    activity = models.TextField()
    duration_min_minutes = models.PositiveIntegerField(null=True, blank=True)
    duration_max_minutes = models.PositiveIntegerField(null=True, blank=True)
    role = models.ForeignKey(TemplateRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.label} {self.activity[:60]}"


class RunbookEdit(models.Model):
    """Who changed which runbook template, when, and how: one row per edit, never changed.

    Written by checklists.services in the same transaction as the edit. PostgreSQL refuses
    UPDATE and DELETE here (migration 0005) and the application's database role may only
    read and add rows (``setup_db_roles``). Links are plain ids without a database
    constraint, so the record outlives a runbook removed in the admin.
    """

    APPEND_ONLY = True  # setup_db_roles grants the application role SELECT and INSERT only

    runbook = models.ForeignKey(Runbook, on_delete=models.DO_NOTHING, db_constraint=False, related_name="edits")
    version = models.ForeignKey(RunbookVersion, on_delete=models.DO_NOTHING, db_constraint=False, related_name="edits")
    version_number = models.PositiveIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Who, as shown (kept if the user is renamed)")
    action = models.CharField(max_length=40)
    summary = models.CharField(max_length=500)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["runbook", "-created_at"])]

    def __str__(self):
        return f"{self.actor_label}: {self.summary}"
