"""Communications of a deployment: channels, message templates, scheduled and manual
sends, each delivery's result, and the public status page.

Rows here change only through comms.services (and comms.delivery for a delivery's
own attempts).
"""

import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from deployments.models import FINISHED_STATES, Deployment, DeploymentRole, DeploymentState


class Transport(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook (Slack-compatible)"


class WebhookEndpoint(models.Model):
    """A chat or paging webhook (Slack-compatible), defined by an administrator.

    A deployment's webhook channel names one; the address and the name of the environment
    variable holding its signing secret are the administrator's, never typed in a war room,
    so nobody can make a worker post to an address of their choosing.
    """

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=300, blank=True)
    url = models.URLField(max_length=500, help_text="Where messages are POSTed (http or https)")
    secret_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the HMAC secret (never the secret)"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        parts = urlsplit(self.url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError({"url": "An http:// or https:// URL."})
        if self.secret_env and not self.secret_env.replace("_", "").isalnum():
            raise ValidationError({"secret_env": "The name of an environment variable, e.g. WARROOM_SLACK_SECRET."})


class Channel(models.Model):
    """Where messages go: a list of e-mail addresses, or an administrator-defined webhook."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="comm_channels")
    name = models.CharField(max_length=100)
    transport = models.CharField(max_length=10, choices=Transport.choices)
    recipients = models.JSONField(default=list, blank=True, help_text="E-mail addresses (e-mail channels)")
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="channels",
        help_text="The administrator-defined webhook (webhook channels)",
    )
    carries_pages = models.BooleanField(default=False, help_text="Incident pages are posted here too")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "name"], name="uniq_comm_channel_name")]

    def __str__(self):
        return self.name

    @property
    def target_label(self) -> str:
        """To whom, as shown: addresses, or the webhook's host only (its path is often a secret)."""
        if self.transport == Transport.EMAIL:
            return ", ".join(self.recipients)
        if self.endpoint is None:
            return "no webhook chosen"
        parts = urlsplit(self.endpoint.url)
        return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else self.endpoint.name


class TemplateKind(models.TextChoices):
    MAINTENANCE_NOTICE = "maintenance_notice", "Maintenance notice"
    STARTING = "starting", "Deployment starting"
    GO_LIVE = "go_live", "Go-live"
    ROLLBACK = "rollback", "Rollback / extended maintenance"
    DELAY = "delay", "Delay (running past the window)"
    INCIDENT_ALERT = "incident_alert", "Incident alert"
    OTHER = "other", "Other"


# Every state a deployment can still change from: most announcements may go out in any of them.
UNFINISHED_STATES = [s.value for s in DeploymentState if s not in FINISHED_STATES]


class SendCondition(models.TextChoices):
    """What must hold, besides the deployment's state, for a scheduled message to go out.

    Checked by comms.conditions each time beat looks at a due message; a short, closed
    list on purpose: each one is something Warroom itself knows, never a typed rule.
    """

    ALWAYS = "always", "Nothing more"
    NO_OPEN_SEV1 = "no_open_sev1", "No open SEV1 incident"
    NO_OPEN_INCIDENT = "no_open_incident", "No open incident of any severity"
    PAST_WINDOW = "past_window", "The planned end of the window has passed"


def default_send_states() -> list[str]:
    return list(UNFINISHED_STATES)


class MessageTemplate(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="message_templates")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=TemplateKind.choices, default=TemplateKind.OTHER)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    offset_minutes = models.IntegerField(null=True, blank=True, help_text="When it is planned, relative to T-0")
    channels = models.ManyToManyField(Channel, blank=True, related_name="templates")
    sender_role = models.ForeignKey(
        DeploymentRole,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Besides the lead, who may send it (e.g. Product Owner)",
    )
    is_public = models.BooleanField(default=False, help_text="Once sent, it shows on the public status page")
    # When a scheduled send of it may go out (comms.conditions): the deployment in one of
    # these states, and the condition holding. Sending by hand is the sender's own decision.
    send_states = ArrayField(
        models.CharField(max_length=20, choices=DeploymentState.choices),
        default=default_send_states,
        help_text="A scheduled send goes out only while the deployment is in one of these states",
    )
    send_condition = models.CharField(
        max_length=20,
        choices=SendCondition.choices,
        default=SendCondition.ALWAYS,
        help_text="…and only while this holds",
    )
    position = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["position", "offset_minutes", "id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "name"], name="uniq_message_template_name")]

    def __str__(self):
        return self.name


class ScheduleState(models.TextChoices):
    PENDING = "pending", "Scheduled"
    DONE = "done", "Sent out"
    BY_HAND = "by_hand", "Sent by hand instead"
    CANCELLED = "cancelled", "Cancelled"


class ScheduledSend(models.Model):
    """A template to be sent at T-0 + offset. Only the offset is stored, so the due time
    follows T-0 when the lead re-anchors it; the beat task claims it (pending → done)
    with a guarded update, so it goes out once."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="scheduled_sends")
    template = models.ForeignKey(MessageTemplate, null=True, on_delete=models.SET_NULL, related_name="scheduled_sends")
    template_name = models.CharField(max_length=120)
    offset_minutes = models.IntegerField()
    state = models.CharField(max_length=10, choices=ScheduleState.choices, default=ScheduleState.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    # Due, but its template's state or condition does not hold: why, in words, since when (set by beat).
    held_reason = models.CharField(max_length=300, blank=True)
    held_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["offset_minutes", "id"]
        indexes = [models.Index(fields=["state"])]

    def __str__(self):
        return f"{self.template_name} at T{self.offset_minutes:+d} min"

    def due_at(self, t0=None):
        return (t0 or self.deployment.planned_t0) + timedelta(minutes=self.offset_minutes)


class MessageKind(models.TextChoices):
    MANUAL = "manual", "Sent by hand"
    SCHEDULED = "scheduled", "Scheduled"
    PAGE = "page", "Incident page"


class Message(models.Model):
    """One message as it was sent: who, when, and the content exactly as rendered."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="messages")
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    scheduled = models.OneToOneField(ScheduledSend, null=True, blank=True, on_delete=models.SET_NULL, related_name="message")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    subject = models.CharField(max_length=200)
    text = models.TextField()
    html = models.TextField()
    slack = models.TextField()
    public = models.BooleanField(default=False)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sender_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.subject


class DeliveryState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


PENDING_DELIVERY_STATES = {DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.RETRYING}


class Delivery(models.Model):
    """A message on its way to one channel (or one paged contact): to whom, and the result.

    ``idempotency_key`` travels with it (webhook header, e-mail Message-ID) so a
    receiver can drop a duplicate; Warroom itself claims the row before each attempt
    (queued/retrying → sending) so two workers never send it twice.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    transport = models.CharField(max_length=10, choices=Transport.choices)
    recipients = models.JSONField(default=list, blank=True)
    target_label = models.CharField(max_length=500, help_text="To whom, as shown")
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    last_error = models.TextField(blank=True)
    result = models.CharField(max_length=300, blank=True, help_text="What the receiver answered")
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"

    def __str__(self):
        return f"{self.message} → {self.target_label}"


class StatusPage(models.Model):
    """The public page of one deployment: opt-in by the lead, reached by an unguessable token."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="status_page")
    token = models.CharField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self):
        return f"Status page of {self.deployment}"
