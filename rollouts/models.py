"""Systems being deployed (targets), and automated steps run on Celery workers (task runs).

Targets are defined by admins, never by war-room users; a war-room user can only
press "Run" on an action the runbook step defines, for a target the deployment is
bound to. Runs change only through rollouts.runs (service functions) and the task.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from checklists.models import StepAction
from deployments.models import Deployment, Step

Action = StepAction  # the kinds of automated step, defined with the runbook models


def validate_argv(value, field_name="argv"):
    """An argv list: no shell, every element a non-empty string."""
    if not isinstance(value, list) or not value or not all(isinstance(part, str) and part for part in value):
        raise ValidationError(
            {field_name: 'Must be a list of strings (an argv list, no shell), e.g. ["python", "manage.py", "migrate"].'}
        )


def validate_url(value: str, field_name: str, schemes=("http", "https")):
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or (parts.path and parts.scheme.startswith("postgres"))):
        raise ValidationError({field_name: f"{value!r} is not a valid {'/'.join(schemes)} URL."})


class Target(models.Model):
    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=300, blank=True)
    database_url_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the database URL (never the URL itself)"
    )
    database_url_file = models.CharField(max_length=500, blank=True, help_text="Or: path of a file holding the database URL")
    base_url = models.URLField(blank=True, help_text="For smoke checks: {base_url} in check URLs")
    migrate_argv = models.JSONField(default=list, blank=True, help_text='e.g. ["npx", "prisma", "migrate", "deploy"]')
    migrate_cwd = models.CharField(max_length=500, blank=True)
    migrate_env = models.JSONField(
        default=dict,
        blank=True,
        help_text='Environment for the migration: {"NAME": "literal"}, {"NAME": "$ENV_VAR"} or {"DATABASE_URL": "@database_url"}',
    )
    migrate_timeout_seconds = models.PositiveIntegerField(default=900)
    maintenance_file = models.CharField(max_length=500, blank=True, help_text="Touched for maintenance on, removed for off")
    maintenance_url = models.URLField(blank=True, help_text='Or: POSTed {"maintenance": true|false}')
    commands = models.JSONField(
        default=dict, blank=True, help_text='Named argv lists: {"restart": ["systemctl", "restart", "app"]}'
    )
    backup_keep = models.PositiveSmallIntegerField(default=5, help_text="Backups kept per target")
    verify_restore = models.BooleanField(default=False, help_text="Test-restore each backup into a scratch database")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if self.database_url_env and self.database_url_file:
            raise ValidationError({"database_url_file": "Give the database URL by environment variable or by file, not both."})
        if self.database_url_env and self.database_url_env not in os.environ:
            raise ValidationError({"database_url_env": f"The environment variable {self.database_url_env} is not set."})
        if self.database_url_file and not Path(self.database_url_file).is_file():
            raise ValidationError({"database_url_file": f"No file at {self.database_url_file}."})
        if self.database_url_env or self.database_url_file:
            url = self.database_url()
            if not url.startswith(("postgres://", "postgresql://")):
                raise ValidationError(
                    {
                        "database_url_env"
                        if self.database_url_env
                        else "database_url_file": "The database URL must start with postgresql://"
                    }
                )
        if self.migrate_argv:
            validate_argv(self.migrate_argv, "migrate_argv")
        if not isinstance(self.migrate_env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.migrate_env.items()
        ):
            raise ValidationError({"migrate_env": "Must be an object of names to strings."})
        for name, value in self.migrate_env.items():
            if value.startswith("$") and value[1:] not in os.environ:
                raise ValidationError({"migrate_env": f"{name} refers to ${value[1:]}, which is not set."})
        if not isinstance(self.commands, dict):
            raise ValidationError({"commands": "Must be an object of names to argv lists."})
        for name, argv in self.commands.items():
            validate_argv(argv, "commands")
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValidationError({"commands": f"Command name {name!r}: letters, digits, - and _ only."})
        if self.maintenance_file and self.maintenance_url:
            raise ValidationError({"maintenance_url": "Use a maintenance file or URL, not both."})

    def database_url(self) -> str:
        """Read at run time in the worker; never stored, shown or logged."""
        if self.database_url_env:
            return os.environ.get(self.database_url_env, "")
        if self.database_url_file:
            return Path(self.database_url_file).read_text().strip()
        return ""


class TargetBinding(models.Model):
    """Which targets a deployment may act on (set by admins or the lead)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="target_bindings")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="bindings")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "target"], name="uniq_target_binding")]

    def __str__(self):
        return f"{self.target} for {self.deployment}"


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"
    LOST = "lost", "Lost (worker died)"


ACTIVE_RUN_STATES = {RunState.QUEUED, RunState.RUNNING}


class TaskRun(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="task_runs")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="task_runs")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="runs")
    action = models.CharField(max_length=20, choices=Action.choices)
    config = models.JSONField(default=dict, blank=True, help_text="The step's action settings at start")
    state = models.CharField(max_length=12, choices=RunState.choices, default=RunState.QUEUED)
    attempt = models.PositiveSmallIntegerField(default=0)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why it failed, in words")
    result = models.JSONField(default=dict, blank=True, help_text="Artifacts and check results")
    log_line_count = models.PositiveIntegerField(default=0)
    log_tail = models.TextField(blank=True, help_text="The last lines, for the war room")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]

    def __str__(self):
        return f"Run #{self.pk} {self.action} on {self.target}"

    @property
    def is_active(self):
        return self.state in ACTIVE_RUN_STATES

    @property
    def duration_seconds(self):
        if not self.started_at:
            return None
        end = self.finished_at
        if end is None:
            end = timezone.now()
        return round((end - self.started_at).total_seconds(), 1)


class TaskLogLine(models.Model):
    run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="uniq_log_line_seq")]

    def __str__(self):
        return f"{self.seq}: {self.text[:60]}"


# --- traffic rollouts ----------------------------------------------------------------------


class Strategy(models.TextChoices):
    CANARY = "canary", "Canary stages"
    BLUE_GREEN = "blue_green", "Blue-green switch"
    ALL_AT_ONCE = "all_at_once", "All at once"


class RouterKind(models.TextChoices):
    NGINX = "nginx", "nginx upstream weights"
    WEBHOOK = "webhook", "Webhook (HMAC-signed JSON)"
    MANUAL = "manual", "Manual: a person changes it and confirms"


class Router(models.Model):
    """Where traffic weights are set: defined by an administrator, named by rollout plans.

    A plan (or a runbook's ``warroom`` block) says only ``"router": "<name>"``; the file
    nginx reads, the commands that test and reload it, and the webhook's address and
    secret live here, so nothing a war-room user types becomes a path, a command or a
    URL that a worker acts on.
    """

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=10, choices=[(k.value, k.label) for k in (RouterKind.NGINX, RouterKind.WEBHOOK)])
    upstream_file = models.CharField(max_length=500, blank=True, help_text="nginx: the file holding the upstream block")
    upstream_name = models.CharField(max_length=100, blank=True, help_text="nginx: the upstream's name")
    stable_server = models.CharField(max_length=200, blank=True, help_text="nginx: host:port of the stable version")
    canary_server = models.CharField(max_length=200, blank=True, help_text="nginx: host:port of the new version")
    test_argv = models.JSONField(default=list, blank=True, help_text='nginx: e.g. ["nginx", "-t", "-q"]')
    reload_argv = models.JSONField(default=list, blank=True, help_text='nginx: e.g. ["nginx", "-s", "reload"]')
    url = models.URLField(blank=True, help_text="webhook: where weights are POSTed")
    secret_env = models.CharField(
        max_length=100, blank=True, help_text="webhook: name of the environment variable holding the HMAC secret"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        problems = {}
        if self.kind == RouterKind.NGINX:
            for key in ("upstream_file", "upstream_name", "stable_server", "canary_server"):
                if not getattr(self, key):
                    problems[key] = "Required for an nginx router."
            for key in ("test_argv", "reload_argv"):
                try:
                    validate_argv(getattr(self, key), key)
                except ValidationError as exc:
                    problems.update(exc.message_dict)
            if self.upstream_file and not Path(self.upstream_file).is_absolute():
                problems["upstream_file"] = "Give an absolute path."
        elif self.kind == RouterKind.WEBHOOK:
            try:
                validate_url(self.url, "url")
            except ValidationError as exc:
                problems.update(exc.message_dict)
            if not self.secret_env:
                problems["secret_env"] = "Name the environment variable holding the HMAC secret."  # noqa: S105 (a message)
            elif self.secret_env not in os.environ:
                problems["secret_env"] = f"The environment variable {self.secret_env} is not set."
        else:
            problems["kind"] = "A router is nginx or webhook (a manual rollout needs no router)."
        if problems:
            raise ValidationError(problems)


def defined_names(model) -> str:
    """What an administrator has defined, for a refusal that says what may be named instead."""
    names = list(model.objects.values_list("name", flat=True)[:20])
    return f" (defined: {', '.join(names)})" if names else " (none is defined yet: an administrator adds them in the admin)"


# The router and metric source that `seed_demo` defines for the demo's pretend production.
DEMO_ROUTER = "demo-router"
DEMO_SOURCE = "demo-metrics"


class MetricSourceKind(models.TextChoices):
    PROMETHEUS = "prometheus", "Prometheus server"
    HTTP_JSON = "http_json", "HTTP endpoint answering JSON"


class MetricSource(models.Model):
    """Where metric gates read numbers: defined by an administrator, named by rollout plans.

    A plan gives the query (Prometheus) or the JSON path (HTTP) to read from it, never the address.
    """

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=12, choices=MetricSourceKind.choices)
    url = models.URLField(help_text="Prometheus: the server's base URL; HTTP: the URL answering JSON")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        validate_url(self.url, "url")


class RolloutState(models.TextChoices):
    DRAFT = "draft", "Not started"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a person to confirm the weight"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed: 100 % on the new version"
    ABORTED = "aborted", "Aborted: traffic back on the stable version"


class RolloutPlan(models.Model):
    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="rollout")
    step = models.ForeignKey(
        Step,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The runbook step it belongs to: its role may operate it",
    )
    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.CANARY)
    router = models.CharField(max_length=10, choices=RouterKind.choices, default=RouterKind.MANUAL)
    router_def = models.ForeignKey(
        Router,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="plans",
        help_text="The administrator-defined router (none for a manual rollout)",
    )
    sample_seconds = models.PositiveIntegerField(default=30, help_text="How often gates are sampled")
    state = models.CharField(max_length=10, choices=RolloutState.choices, default=RolloutState.DRAFT)
    stage_index = models.IntegerField(default=-1, help_text="-1: not started")
    stage_started_at = models.DateTimeField(null=True, blank=True)
    applied_weight = models.PositiveSmallIntegerField(default=0, help_text="Canary weight the router last confirmed")
    last_sample_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it paused or aborted, in words")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Rollout of {self.deployment}"

    @property
    def current_stage(self):
        stages = list(self.stages.all())
        return stages[self.stage_index] if 0 <= self.stage_index < len(stages) else None


class Stage(models.Model):
    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField()
    weight = models.PositiveSmallIntegerField(help_text="Per cent of traffic on the new version")
    hold_seconds = models.PositiveIntegerField(default=300)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="uniq_stage_position"),
            models.CheckConstraint(condition=models.Q(weight__lte=100), name="stage_weight_at_most_100"),
        ]

    def __str__(self):
        return f"{self.weight} %"


class SourceKind(models.TextChoices):
    PROMETHEUS = "prometheus", "Prometheus query"
    HTTP_JSON = "http_json", "HTTP JSON value"
    MANUAL = "manual", "Read by a person"


class MetricGate(models.Model):
    plan = models.ForeignKey(RolloutPlan, on_delete=models.CASCADE, related_name="gates")
    name = models.CharField(max_length=80)
    source = models.CharField(max_length=12, choices=SourceKind.choices)
    source_def = models.ForeignKey(
        MetricSource,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="gates",
        help_text="The administrator-defined source (none when a person reads the value)",
    )
    source_config = models.JSONField(default=dict, blank=True, help_text='{"query"} (Prometheus) or {"path"} (HTTP JSON)')
    comparator = models.CharField(max_length=2, choices=[("<", "<"), ("<=", "≤"), (">", ">"), (">=", "≥")], default="<")
    threshold = models.FloatField()
    unit = models.CharField(max_length=12, blank=True)
    consecutive_bad = models.PositiveSmallIntegerField(default=1, help_text="Bad readings in a row that abort")

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} {self.comparator} {self.threshold}{self.unit}"

    def passes(self, value: float) -> bool:
        return {
            "<": value < self.threshold,
            "<=": value <= self.threshold,
            ">": value > self.threshold,
            ">=": value >= self.threshold,
        }[self.comparator]


class ReadingStatus(models.TextChoices):
    PASS = "pass", "Within threshold"
    FAIL = "fail", "Over threshold"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class MetricReading(models.Model):
    gate = models.ForeignKey(MetricGate, on_delete=models.CASCADE, related_name="readings")
    stage_index = models.IntegerField()
    weight = models.PositiveSmallIntegerField()
    value = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ReadingStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    taken_at = models.DateTimeField()
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["taken_at", "id"]
        indexes = [models.Index(fields=["gate", "taken_at"])]

    def __str__(self):
        return f"{self.gate.name} = {self.value} ({self.status})"
