"""Incidents raised during a deployment, their timeline and escalation pages, and the
post-deployment review with its action items.

Rows here change only through incidents.services and incidents.review.
"""

from django.conf import settings
from django.db import models

from deployments.models import Deployment, EmergencyContact


class Severity(models.TextChoices):
    SEV1 = "sev1", "SEV1 — critical outage or data loss"
    SEV2 = "sev2", "SEV2 — major degradation"
    SEV3 = "sev3", "SEV3 — minor problem"
    SEV4 = "sev4", "SEV4 — cosmetic"


class IncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    MITIGATING = "mitigating", "Mitigating"
    RESOLVED = "resolved", "Resolved"


class Incident(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="incidents")
    number = models.PositiveIntegerField(help_text="INC-n, counted per deployment")
    severity = models.CharField(max_length=4, choices=Severity.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    status = models.CharField(max_length=14, choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING)
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    raised_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # A SEV1 opens a "roll back?" gate at once (approvals.Gate).
    rollback_gate = models.OneToOneField(
        "approvals.Gate", null=True, blank=True, on_delete=models.SET_NULL, related_name="incident"
    )
    # Escalation: the level paged last, and when the next level is paged unless acknowledged.
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["deployment", "number"], name="uniq_incident_number")]
        indexes = [models.Index(fields=["next_escalation_at"])]

    def __str__(self):
        return f"INC-{self.number} {self.title}"

    @property
    def severity_label(self) -> str:
        return self.get_severity_display().split(" ")[0]

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.RESOLVED


class UpdateKind(models.TextChoices):
    RAISED = "raised", "Raised"
    NOTE = "note", "Update"
    STATUS = "status", "Status"
    SEVERITY = "severity", "Severity"
    PAGE = "page", "Page"
    ESCALATION = "escalation", "Escalation"
    ACK = "ack", "Acknowledged"
    GATE = "gate", "Gate"


class IncidentUpdate(models.Model):
    """One line of an incident's timeline, by a person or by Warroom."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    kind = models.CharField(max_length=12, choices=UpdateKind.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_label = models.CharField(max_length=150)
    text = models.TextField()
    status = models.CharField(max_length=14, choices=IncidentStatus.choices, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.text[:80]


class Page(models.Model):
    """One recipient paged for an incident, at one escalation level: an emergency contact
    (``contact``, ``user`` empty) or a participant of the deployment (``user``; ``contact`` is
    the contact whose role they hold, if any). The record of who was paged: nobody is paged
    twice for the same incident (the constraints below, and the check in incidents.services)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="pages")
    level = models.PositiveSmallIntegerField()
    contact = models.ForeignKey(EmergencyContact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contact_name = models.CharField(max_length=120)
    contact_phone = models.CharField(max_length=40, blank=True)
    contact_email = models.EmailField(blank=True)
    reason = models.CharField(max_length=200, blank=True, help_text="Why this person: the role they hold, or the lead")
    message = models.ForeignKey("comms.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["level", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "user"], condition=models.Q(user__isnull=False), name="uniq_page_per_user"
            ),
            models.UniqueConstraint(
                fields=["incident", "contact"],
                condition=models.Q(user__isnull=True, contact__isnull=False),
                name="uniq_page_per_contact",
            ),
        ]

    def __str__(self):
        return f"L{self.level} {self.contact_name}"


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class Review(models.Model):
    """The post-deployment review: minutes, lessons learned, follow-up status."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="review")
    held_at = models.DateTimeField(null=True, blank=True, help_text="When the review meeting took place")
    notes = models.TextField(blank=True, help_text="Minutes")
    lessons_learned = models.TextField(blank=True)
    follow_up_status = models.CharField(max_length=12, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    revision = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self):
        return f"Review of {self.deployment}"


class ActionItem(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="action_items")
    text = models.CharField(max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "id"]

    def __str__(self):
        return self.text
