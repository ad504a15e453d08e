"""Incidents during a deployment: raise, update, acknowledge, and the escalation timer.

Each function checks permission through deployments.permissions.access_for, runs in
one transaction with the incident row locked, writes the incident's timeline and an
event in the deployment's hash-chained log, and pushes the incidents panel after commit.

A SEV1 opens a "roll back?" gate at once (approvals.services.add_gate: every role votes;
the Product Owner decides if the deployment has one, else unanimous) and pages the
escalation order: the emergency contacts of the lowest level first, the next level
after WARROOM_ESCALATION_WAIT_SECONDS without an acknowledgement. Pages go out
through comms (e-mail to the contact, plus every channel that carries pages).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from comms.models import Channel, MessageKind, MessageTemplate, TemplateKind
from comms.rendering import TemplateProblem, render_message
from deployments import actors, live
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import DeploymentRole, EmergencyContact
from deployments.permissions import ACT, Access, allowed, require
from deployments.services import InvalidChange
from incidents.models import Incident, IncidentStatus, IncidentUpdate, Page, Severity, UpdateKind

MAX_TITLE = 200
MAX_TEXT = 5000

DEFAULT_ALERT_SUBJECT = "[{{ incident.severity }}] {{ incident.number }} during {{ deployment.name }}: {{ incident.title }}"
DEFAULT_ALERT_BODY = """{{ incident.severity }} incident {{ incident.number }} during {{ deployment.name }}
({{ deployment.service }} {{ deployment.version }} → {{ deployment.environment }}).

{{ incident.title }}
Status: {{ incident.status }}
Impact: {{ incident.impact|default:"not stated yet" }}

{{ incident.description }}

You are on the escalation list. Acknowledge in the war room: {{ incident.url }}
"""


def _push(deployment_id: int) -> None:
    from incidents import panels

    live.publish_on_commit(deployment_id, lambda: panels.render_incidents_push(deployment_id))


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def may_act(access: Access) -> bool:
    """Raise, update, acknowledge: anyone holding a role, or the lead. Observers watch."""
    return allowed(access, ACT)


def _require_actor(actor, deployment) -> Access:
    return require(
        actor,
        ACT,
        deployment,
        not_found=Incident.DoesNotExist,
        refusal="Observers follow incidents; people holding a role, or the lead, raise and update them.",
    )


def _timeline(incident: Incident, kind: str, text: str, *, actor=None, label: str = "", status: str = "", now=None):
    return IncidentUpdate.objects.create(
        incident=incident,
        kind=kind,
        author=actor,
        author_label=label or (_name(actor) if actor else "Warroom"),
        text=text[:MAX_TEXT],
        status=status,
        created_at=now or timezone.now(),
    )


def _clean(severity: str, title: str, description: str, impact: str) -> tuple[str, str, str]:
    if severity not in Severity.values:
        raise InvalidChange("Choose a severity: SEV1, SEV2, SEV3 or SEV4.")
    title = (title or "").strip()
    if not title:
        raise InvalidChange("Give the incident a short title.")
    if len(title) > MAX_TITLE:
        raise InvalidChange(f"The title is too long ({MAX_TITLE} characters at most).")
    description, impact = (description or "").strip(), (impact or "").strip()
    if len(description) > MAX_TEXT or len(impact) > MAX_TEXT:
        raise InvalidChange(f"Description and impact are limited to {MAX_TEXT:,} characters each.")
    return title, description, impact


# --- raising and updating -------------------------------------------------------------------


@transaction.atomic
def raise_incident(deployment_id: int, actor, *, severity: str, title: str, description: str = "", impact: str = "") -> Incident:
    deployment = lock_deployment(deployment_id)
    _require_actor(actor, deployment)
    title, description, impact = _clean(severity, title, description, impact)
    number = (Incident.objects.filter(deployment=deployment).aggregate(n=Max("number"))["n"] or 0) + 1
    now = timezone.now()
    incident = Incident.objects.create(
        deployment=deployment,
        number=number,
        severity=severity,
        title=title,
        description=description,
        impact=impact,
        raised_by=actor,
        raised_at=now,
    )
    _timeline(
        incident,
        UpdateKind.RAISED,
        f"Raised as {incident.severity_label}: {title}",
        actor=actor,
        status=IncidentStatus.INVESTIGATING,
        now=now,
    )
    record_event(
        deployment.pk,
        actor=actor,
        action="incident.raised",
        obj=incident,
        summary=f"INC-{number} raised ({incident.severity_label}): {title}",
        after={"severity": severity, "title": title, "impact": impact, "description": description},
    )
    if severity == Severity.SEV1:
        _on_sev1(incident, actor)
    _push(deployment.pk)
    return incident


@transaction.atomic
def update_incident(
    incident_id: int, actor, *, text: str = "", status: str | None = None, severity: str | None = None
) -> Incident:
    """An update on the timeline, optionally with a new status or severity."""
    lock_deployment_of(Incident, incident_id)  # deployments/locks.py: the deployment first
    incident = Incident.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=incident_id)
    _require_actor(actor, incident.deployment)
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidChange(f"That update is too long ({MAX_TEXT:,} characters at most).")
    if status not in (None, "", *IncidentStatus.values):
        raise InvalidChange("Status is investigating, mitigating or resolved.")
    if severity not in (None, "", *Severity.values):
        raise InvalidChange("Choose a severity: SEV1, SEV2, SEV3 or SEV4.")
    before = {"status": incident.status, "severity": incident.severity}
    changes = []
    now = timezone.now()
    kind = UpdateKind.NOTE
    if status and status != incident.status:
        kind = UpdateKind.STATUS
        changes.append(f"Status {incident.get_status_display()} → {IncidentStatus(status).label}")
        incident.status = status
        if status == IncidentStatus.RESOLVED:
            incident.resolved_at = now
            incident.next_escalation_at = None  # resolved: nobody else needs waking
        else:
            incident.resolved_at = None
    became_sev1 = False
    if severity and severity != incident.severity:
        old = incident.severity_label
        incident.severity = severity
        changes.append(f"Severity {old} → {incident.severity_label}")
        became_sev1 = severity == Severity.SEV1
        kind = UpdateKind.SEVERITY if kind == UpdateKind.NOTE else kind
    if not text and not changes:
        raise InvalidChange("Write an update, or change the status or severity.")
    incident.save()
    line = ". ".join([*changes, text]) if text else ". ".join(changes)
    _timeline(incident, kind, line, actor=actor, status=incident.status, now=now)
    record_event(
        incident.deployment_id,
        actor=actor,
        action="incident.updated",
        obj=incident,
        summary=f"INC-{incident.number}: {line}"[:500],
        before=before,
        after={"status": incident.status, "severity": incident.severity, "text": text},
    )
    if became_sev1 and incident.is_open:
        _on_sev1(incident, actor)
    _push(incident.deployment_id)
    return incident


@transaction.atomic
def acknowledge(incident_id: int, actor) -> Incident:
    """Someone has it: escalation stops here."""
    lock_deployment_of(Incident, incident_id)  # deployments/locks.py: the deployment first
    incident = Incident.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=incident_id)
    _require_actor(actor, incident.deployment)
    if incident.acknowledged_at:
        raise InvalidChange(
            f"Already acknowledged by {_name(incident.acknowledged_by) if incident.acknowledged_by else 'someone'}."
        )
    if incident.next_escalation_at is None and not incident.pages.exists():
        raise InvalidChange("Nobody is being paged for this incident: there is nothing to acknowledge.")
    now = timezone.now()
    incident.acknowledged_by, incident.acknowledged_at, incident.next_escalation_at = actor, now, None
    incident.save(update_fields=["acknowledged_by", "acknowledged_at", "next_escalation_at"])
    _timeline(incident, UpdateKind.ACK, f"Acknowledged by {_name(actor)}: escalation stopped", actor=actor, now=now)
    record_event(
        incident.deployment_id,
        actor=actor,
        action="incident.acknowledged",
        obj=incident,
        summary=f"INC-{incident.number} acknowledged: escalation stopped at level {incident.escalation_level}",
    )
    _push(incident.deployment_id)
    return incident


# --- SEV1: the rollback gate and the escalation order --------------------------------------------


def _on_sev1(incident: Incident, actor) -> None:
    if incident.rollback_gate_id is None and not incident.deployment.is_finished:
        _open_rollback_gate(incident, actor)
    if incident.escalation_level == 0 and not incident.pages.exists():
        first = EmergencyContact.objects.filter(deployment_id=incident.deployment_id).aggregate(m=Min("level"))["m"]
        _page_level(incident, first)


def _open_rollback_gate(incident: Incident, actor) -> None:
    from approvals.models import GateRule
    from approvals.services import add_gate

    deployment = incident.deployment
    roles = list(DeploymentRole.objects.filter(deployment=deployment))
    if not roles:
        _timeline(incident, UpdateKind.GATE, "No roles in this deployment: no rollback vote could be opened.")
        return
    decider = next((r for r in roles if "product owner" in r.name.lower()), None)
    title = f"Roll back? {incident.severity_label} INC-{incident.number}: {incident.title}"[:240] + " (GO continues, NO-GO stops)"
    # Whoever raised the SEV1, Warroom opens the vote itself, and the log says so.
    gate = add_gate(
        deployment,
        actors.incident(f"Incident INC-{incident.number} ({incident.severity_label})"),
        title=title,
        voter_role_ids=[r.pk for r in roles],
        rule=GateRule.DECIDER if decider else GateRule.UNANIMOUS,
        decider_role_id=decider.pk if decider else None,
    )
    incident.rollback_gate = gate
    incident.save(update_fields=["rollback_gate"])
    rule = f"the {decider.name} decides" if decider else "unanimous"
    _timeline(incident, UpdateKind.GATE, f"Rollback vote opened: every role votes, {rule}. NO-GO pauses the deployment.")


def _alert(incident: Incident):
    from comms.services import context_for

    context = context_for(incident.deployment, incident=incident)
    template = MessageTemplate.objects.filter(deployment_id=incident.deployment_id, kind=TemplateKind.INCIDENT_ALERT).first()
    if template is not None:
        try:
            return render_message(template.subject, template.body, context)
        except TemplateProblem:
            pass  # checked at save; never let a template stop a page
    return render_message(DEFAULT_ALERT_SUBJECT, DEFAULT_ALERT_BODY, context)


def _page_level(incident: Incident, level: int | None) -> None:
    """Page every contact of ``level`` (and the channels that carry pages); arm the timer."""
    from comms.services import compose

    deployment = incident.deployment
    now = timezone.now()
    contacts = list(EmergencyContact.objects.filter(deployment=deployment, level=level).select_related("role")) if level else []
    channels = list(Channel.objects.filter(deployment=deployment, is_active=True, carries_pages=True))
    email_to = [(c.email, c.name) for c in contacts if c.email]
    message = None
    if email_to or channels:
        message = compose(
            deployment,
            rendered=_alert(incident),
            kind=MessageKind.PAGE,
            channels=channels,
            email_to=email_to,
            sender_label=f"Escalation INC-{incident.number}",
        )
    for contact in contacts:
        Page.objects.create(
            incident=incident,
            level=level,
            contact=contact,
            contact_name=contact.name,
            contact_phone=contact.phone,
            contact_email=contact.email,
            message=message,
            created_at=now,
        )
    if not contacts:
        where = f" (posted to {', '.join(c.name for c in channels)})" if channels else ""
        _timeline(incident, UpdateKind.PAGE, f"No emergency contacts to page{where}: add them under People.", now=now)
        record_event(
            deployment.pk,
            actor=None,
            action="incident.paged",
            obj=incident,
            summary=f"INC-{incident.number}: nobody to page{where}",
        )
        return
    higher = EmergencyContact.objects.filter(deployment=deployment, level__gt=level).exists()
    wait = settings.WARROOM_ESCALATION_WAIT_SECONDS
    incident.escalation_level = level
    incident.next_escalation_at = now + timedelta(seconds=wait) if higher else None
    incident.save(update_fields=["escalation_level", "next_escalation_at"])
    who = "; ".join(
        f"{c.name}{' (' + c.role.name + ')' if c.role else ''}"
        + (f" by e-mail to {c.email}" if c.email else "")
        + (f", call {c.phone}" if c.phone else "")
        + (f", via {c.channel}" if c.channel else "")
        for c in contacts
    )
    then = f" Next level in {_duration(wait)} unless acknowledged." if higher else " This is the last level."
    _timeline(incident, UpdateKind.PAGE, f"Paged level {level}: {who}.{then}", now=now)
    record_event(
        deployment.pk,
        actor=None,
        action="incident.paged",
        obj=incident,
        summary=f"INC-{incident.number}: paged level {level}: {', '.join(c.name for c in contacts)}",
        after={"level": level, "contacts": [c.name for c in contacts], "next_at": incident.next_escalation_at},
    )


def _duration(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def escalate_due(now=None) -> int:
    """Beat: page the next level of every unacknowledged incident whose wait is over.

    Each incident is claimed with a guarded update on the level and time it was armed
    with, so two beats (or a beat racing an acknowledgement) escalate it once at most.
    """
    now = now or timezone.now()
    escalated = 0
    due = Incident.objects.filter(next_escalation_at__lte=now, acknowledged_at__isnull=True).exclude(
        status=IncidentStatus.RESOLVED
    )
    for candidate in due.values("pk", "deployment_id", "escalation_level", "next_escalation_at"):
        with transaction.atomic():
            lock_deployment(candidate["deployment_id"])
            claimed = Incident.objects.filter(
                pk=candidate["pk"],
                escalation_level=candidate["escalation_level"],
                next_escalation_at=candidate["next_escalation_at"],
                acknowledged_at__isnull=True,
            ).update(next_escalation_at=None)
            if not claimed:
                continue
            incident = Incident.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=candidate["pk"])
            level = incident.escalation_level
            next_level = EmergencyContact.objects.filter(deployment_id=incident.deployment_id, level__gt=level).aggregate(
                m=Min("level")
            )["m"]
            if next_level is None:
                continue
            waited = _duration(
                int((now - candidate["next_escalation_at"]).total_seconds()) + settings.WARROOM_ESCALATION_WAIT_SECONDS
            )
            _timeline(
                incident,
                UpdateKind.ESCALATION,
                f"No acknowledgement after level {level} (about {waited}): escalating to level {next_level}.",
            )
            record_event(
                incident.deployment_id,
                actor=None,
                action="incident.escalated",
                obj=incident,
                summary=f"INC-{incident.number}: not acknowledged, escalating from level {level} to {next_level}",
            )
            _page_level(incident, next_level)
            _push(incident.deployment_id)
            escalated += 1
    return escalated


# --- what scheduled messages wait for (comms.conditions) ------------------------------------


def open_incidents_in_words(deployment, *, severity: str | None = None) -> str | None:
    """None when no incident (of ``severity``) is open in the deployment, else which are, in words."""
    open_ones = Incident.objects.filter(deployment=deployment).exclude(status=IncidentStatus.RESOLVED)
    if severity:
        open_ones = open_ones.filter(severity=severity)
    found = [f"INC-{i.number} ({i.severity_label})" for i in open_ones.order_by("number")[:5]]
    if not found:
        return None
    total = open_ones.count()
    more = f" and {total - len(found)} more" if total > len(found) else ""
    return f"{', '.join(found)}{more} {'is' if total == 1 else 'are'} open"
