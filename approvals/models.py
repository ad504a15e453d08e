"""Sign-offs required before start, and go/no-go gates with votes and decisions.

Rows here change only through approvals.services.
"""

from django.conf import settings
from django.db import models

from deployments.models import Deployment, DeploymentRole, Item, Step


class RequiredApproval(models.Model):
    """An approval the deployment needs before it may start (e.g. "Security team approval")."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="required_approvals")
    label = models.CharField(max_length=300)
    role = models.ForeignKey(
        DeploymentRole,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who may give it; without a role, the lead gives it",
    )
    position = models.PositiveIntegerField(default=0)
    # The runbook line it came from ("- [ ] Product Owner approval"): ticked while given.
    item = models.OneToOneField(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="required_approval")
    # The current approval, if given and not withdrawn.
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    statement = models.CharField(max_length=500, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.label

    @property
    def is_given(self):
        return self.approved_at is not None


class GateRule(models.TextChoices):
    UNANIMOUS = "unanimous", "Unanimous: every voter says GO"
    QUORUM = "quorum", "Quorum: N GO votes"
    DECIDER = "decider", "Decider: one role decides after hearing the others"


class GateState(models.TextChoices):
    WAITING = "waiting", "Waiting for its checklist"
    OPEN = "open", "Open for votes"
    CLOSED = "closed", "Decided"
    CANCELLED = "cancelled", "Cancelled: the deployment finished undecided"


# A gate in one of these takes no more votes.
SETTLED_GATE_STATES = {GateState.CLOSED, GateState.CANCELLED}


class Decision(models.TextChoices):
    GO = "go", "GO"
    NO_GO = "no_go", "NO-GO"


class Gate(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="gates")
    title = models.CharField(max_length=300)
    # The runbook line this gate came from (e.g. "**Decision:** ☐ GO ☐ NO-GO"), if any.
    item = models.OneToOneField(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="gate")
    # What must hold to say GO, as the runbook wrote it ("Proceed if error rate < 1% for 30 min").
    criteria = models.TextField(blank=True)
    # Where a gate without a line of its own stands (a decision the import recognised in the step's text).
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    go_label = models.CharField(max_length=40, default="GO")
    no_go_label = models.CharField(max_length=40, default="NO-GO")
    position = models.PositiveIntegerField(default=0)
    voter_roles = models.ManyToManyField(DeploymentRole, related_name="voting_gates", blank=True)
    rule = models.CharField(max_length=12, choices=GateRule.choices, default=GateRule.UNANIMOUS)
    quorum = models.PositiveSmallIntegerField(null=True, blank=True, help_text="GO votes needed (quorum rule)")
    role_quorum = models.JSONField(default=dict, blank=True, help_text="Per-role GO votes needed: {role id: n}")
    decider_role = models.ForeignKey(DeploymentRole, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    veto_roles = models.ManyToManyField(DeploymentRole, related_name="veto_gates", blank=True)
    condition_items = models.ManyToManyField(
        Item, related_name="conditioned_gates", blank=True, help_text="Must all be done before voting opens"
    )
    state = models.CharField(max_length=10, choices=GateState.choices, default=GateState.WAITING)
    opened_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=6, choices=Decision.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_summary = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.title

    def label_for(self, decision: str) -> str:
        """The gate's own word for a decision ("GO-LIVE", "NO-GO"…); "" for none."""
        if not decision:
            return ""
        return self.go_label if decision == Decision.GO else self.no_go_label

    @property
    def at_step(self):
        """The step the gate stands at: its line's, or the one the import placed it in (None: the whole runbook)."""
        return self.item.step if self.item_id else self.step


class Vote(models.Model):
    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    choice = models.CharField(max_length=6, choices=Decision.choices)
    reason = models.TextField(blank=True)
    # What the vote was cast against (see approvals.evidence); a change makes it stale.
    evidence_digest = models.CharField(max_length=64)
    stale = models.BooleanField(default=False)
    cast_at = models.DateTimeField()

    class Meta:
        ordering = ["cast_at"]
        constraints = [models.UniqueConstraint(fields=["gate", "voter"], name="one_vote_per_voter_per_gate")]

    def __str__(self):
        return f"{self.voter} {self.choice} on {self.gate}"


class ApiToken(models.Model):
    """A per-deployment token for CI pipelines; only its SHA-256 is stored."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="First characters, to recognise it in lists")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
