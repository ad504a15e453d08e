"""Incidents during a deployment: raise, update, acknowledge, and the escalation timer.

Each function checks permission through deployments.permissions.access_for, runs in
one transaction with the incident row locked, writes the incident's timeline and an
event in the deployment's hash-chained log, and pushes the incidents panel after commit.

A SEV1 opens a "roll back?" gate at once (approvals.services.add_gate: every role votes;
the Product Owner decides if the deployment has one, else unanimous) and pages the
escalation order: the lowest level first, the next level after
WARROOM_ESCALATION_WAIT_SECONDS without an acknowledgement. Who a level reaches (its
contacts, the holders of the roles they name, else the deployment's own lead and role
holders) is written down above ``recipients_of_level``. Pages go out through comms
(e-mail to each recipient, plus every channel that carries pages).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from approvals.models import GateRule
from approvals.services import add_gate
from comms.models import Channel, MessageKind, MessageTemplate, TemplateKind
from comms.rendering import TemplateProblem, render_message
from comms.services import compose, context_for
from deployments import actors, live
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import DeploymentRole, EmergencyContact, Participant
from deployments.permissions import ACT, Access, allowed, require
from deployments.services import InvalidChange
from incidents import panels
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


log = logging.getLogger(__name__)
ESCALATE_TASK = "incidents.escalate_due"  # incidents/tasks.py


def _push(deployment_id: int) -> None:
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
        if not escalation_list_reaches_anyone(incident.deployment_id):
            _tell_the_lead_nobody_can_be_paged(incident)
        _page_level(incident, escalation_levels(incident.deployment_id)[0])


def rollback_vote_decided(gate, decision: str) -> None:
    """approvals' on_gate_decided receiver: the incident whose rollback vote this was says so
    on its timeline, and every screen's incidents panel stops saying "open"."""
    incident = Incident.objects.filter(rollback_gate=gate).first()
    if incident is None:
        return

    word = gate.label_for(decision)
    _timeline(incident, UpdateKind.GATE, f"Rollback vote decided {word}: {gate.decision_summary}"[:MAX_TEXT])
    _push(incident.deployment_id)


def _open_rollback_gate(incident: Incident, actor) -> None:
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
    context = context_for(incident.deployment, incident=incident)
    template = MessageTemplate.objects.filter(deployment_id=incident.deployment_id, kind=TemplateKind.INCIDENT_ALERT).first()
    if template is not None:
        try:
            return render_message(template.subject, template.body, context)
        except TemplateProblem:
            pass  # checked at save; never let a template stop a page
    return render_message(DEFAULT_ALERT_SUBJECT, DEFAULT_ALERT_BODY, context)


# --- who is paged -----------------------------------------------------------------------------
#
# The escalation list is the deployment's emergency contacts, by level, 1 first; a deployment
# without contacts has one level, 1. Paging level N reaches, each person once per incident
# (the Page rows are the record; someone already paged is not paged again at a later level):
#
#   1. every contact of level N: by e-mail when the contact has an address; a phone number or
#      a channel written in the runbook ("PagerDuty", "#ops-oncall") is put on the timeline
#      for a person to call;
#   2. the participants holding a role that a level-N contact names ("Level 2: Lead Developer"
#      means whoever holds Lead Developer in this deployment), by their account e-mail;
#   3. when 1 and 2 give Warroom no address to send to (no contacts, contacts with a phone or a
#      channel only, nobody holding their roles has an e-mail address): the deployment's own
#      people instead — its lead(s) and every participant holding a role, by account e-mail.
#
# People without an e-mail address cannot be paged by Warroom and get no Page row. A contact
# or participant added while an incident escalates joins it on the next beat: everyone of the
# levels paged so far who has no page yet is paged then (``escalate_due``).

NOBODY_TO_PAGE = "SEV1 open and nobody can be paged: add contacts"


@dataclass
class Recipient:
    level: int
    name: str
    email: str = ""
    phone: str = ""
    channel: str = ""
    reason: str = ""  # the contact's role, the roles a participant holds, "lead"
    contact: EmergencyContact | None = None
    user: object = None

    @property
    def key(self) -> tuple[str, int]:
        return ("user", self.user.pk) if self.user is not None else ("contact", self.contact.pk)

    def describe(self) -> str:
        return (
            self.name
            + (f" ({self.reason})" if self.reason else "")
            + (f" by e-mail to {self.email}" if self.email else "")
            + (f", call {self.phone}" if self.phone else "")
            + (f", via {self.channel}" if self.channel else "")
        )


def escalation_levels(deployment_id: int) -> list[int]:
    """The levels of the escalation list in order; [1] when the deployment has no contacts."""
    levels = EmergencyContact.objects.filter(deployment_id=deployment_id).values_list("level", flat=True)
    return sorted(set(levels)) or [1]


def escalation_list_reaches_anyone(deployment_id: int) -> bool:
    """Whether any emergency contact can be e-mailed, itself or through a role someone holds."""
    contacts = EmergencyContact.objects.filter(deployment_id=deployment_id)
    if contacts.exclude(email="").exists():
        return True
    named_roles = contacts.filter(role__isnull=False).values("role_id")
    return Participant.objects.filter(deployment_id=deployment_id, roles__in=named_roles).exclude(user__email="").exists()


def _participants(deployment_id: int) -> list[Participant]:
    return list(
        Participant.objects.filter(deployment_id=deployment_id)
        .select_related("user")
        .prefetch_related("roles")
        .order_by("-is_lead", "user__username")
    )


def recipients_of_level(deployment_id: int, level: int, *, participants: list[Participant] | None = None) -> list[Recipient]:
    """Who paging ``level`` reaches, by the rule above (before leaving out who was paged already).
    ``participants``: the deployment's, when the caller asks for several levels."""
    contacts = list(
        EmergencyContact.objects.filter(deployment_id=deployment_id, level=level).select_related("role").order_by("name", "id")
    )
    if participants is None:
        participants = _participants(deployment_id)
    found = [
        Recipient(level, c.name, email=c.email, phone=c.phone, channel=c.channel, reason=c.role.name if c.role else "", contact=c)
        for c in contacts
    ]
    naming = {c.role_id: c for c in contacts if c.role_id}
    for p in participants:
        held = [r for r in p.roles.all() if r.pk in naming]
        if held:
            reason = ", ".join(r.name for r in held)
            contact = naming[held[0].pk]
            found.append(Recipient(level, _name(p.user), email=p.user.email, reason=reason, contact=contact, user=p.user))
    if not any(r.email for r in found):
        for p in participants:
            roles = [r.name for r in p.roles.all()]
            if p.is_lead or roles:
                reason = ", ".join((["lead"] if p.is_lead else []) + roles)
                found.append(Recipient(level, _name(p.user), email=p.user.email, reason=reason, user=p.user))
    unique = {}
    for r in found:
        unique.setdefault(r.key, r)
    return list(unique.values())


def _not_yet_paged(incident: Incident, recipients: list[Recipient]) -> list[Recipient]:
    """Those who can be paged and have not been for this incident (by person and by address)."""
    keys, addresses = set(), set()
    for user_id, contact_id, email in incident.pages.values_list("user_id", "contact_id", "contact_email"):
        keys.add(("user", user_id) if user_id else ("contact", contact_id))
        if email:
            addresses.add(email.casefold())
    fresh = []
    for r in recipients:
        if r.user is not None and not r.email:
            continue  # no address: nothing Warroom can send them
        address = r.email.casefold()
        if r.key in keys or (address and address in addresses):
            continue
        keys.add(r.key)
        if address:
            addresses.add(address)
        fresh.append(r)
    return fresh


def _send_pages(incident: Incident, recipients: list[Recipient], *, channels=(), now) -> None:
    """One page message (e-mail to each address, and the channels that carry pages), one Page row each."""
    message = None
    email_to = [(r.email, r.name) for r in recipients if r.email]
    if email_to or channels:
        message = compose(
            incident.deployment,
            rendered=_alert(incident),
            kind=MessageKind.PAGE,
            channels=list(channels),
            email_to=email_to,
            sender_label=f"Escalation INC-{incident.number}",
        )
    Page.objects.bulk_create(
        Page(
            incident=incident,
            level=r.level,
            contact=r.contact,
            user=r.user,
            contact_name=r.name[:120],
            contact_phone=r.phone[:40],
            contact_email=r.email,
            reason=r.reason[:200],
            message=message,
            created_at=now,
        )
        for r in recipients
    )


def _without_address(recipients: list[Recipient]) -> str:
    names = [r.name for r in recipients if r.user is not None and not r.email]
    return f" No e-mail address for {', '.join(names)}: not paged." if names else ""


def _tell_the_lead_nobody_can_be_paged(incident: Incident) -> None:
    """The escalation list reaches nobody: the timeline, the log and the lead's screens say so
    (the war room and TV banner, and "Waiting for you" on the lead's phone view, read it live)."""
    _timeline(
        incident,
        UpdateKind.PAGE,
        "No emergency contact can be paged by e-mail: paging the lead and the role holders instead. "
        "Lead: add contacts under People.",
    )
    record_event(
        incident.deployment_id,
        actor=None,
        action="incident.unpageable",
        obj=incident,
        summary=f"INC-{incident.number}: {NOBODY_TO_PAGE} under People (the lead is asked to)",
    )


def _page_level(incident: Incident, level: int, *, now=None) -> None:
    """Page whoever of ``level`` has no page yet (and the channels that carry pages); arm the timer."""
    deployment = incident.deployment
    now = now or timezone.now()
    everyone = recipients_of_level(deployment.pk, level)
    fresh = _not_yet_paged(incident, everyone)
    channels = list(Channel.objects.filter(deployment=deployment, is_active=True, carries_pages=True))
    _send_pages(incident, fresh, channels=channels, now=now)
    where = f" (posted to {', '.join(c.name for c in channels)})" if channels else ""
    if not incident.pages.exists():
        # Nobody at all could be paged: no timer; the beat pages whoever is added later.
        _timeline(incident, UpdateKind.PAGE, f"{NOBODY_TO_PAGE}{where}.{_without_address(everyone)}", now=now)
        record_event(
            deployment.pk,
            actor=None,
            action="incident.paged",
            obj=incident,
            summary=f"INC-{incident.number}: nobody to page{where}",
            after={"level": level, "paged": []},
        )
        return
    higher = EmergencyContact.objects.filter(deployment=deployment, level__gt=level).exists()
    wait = settings.WARROOM_ESCALATION_WAIT_SECONDS
    incident.escalation_level = level
    incident.next_escalation_at = now + timedelta(seconds=wait) if higher else None
    incident.save(update_fields=["escalation_level", "next_escalation_at"])
    who = "; ".join(r.describe() for r in fresh) if fresh else "everyone on it was paged already"
    then = f" Next level in {_duration(wait)} unless acknowledged." if higher else " This is the last level."
    _timeline(incident, UpdateKind.PAGE, f"Paged level {level}{where}: {who}.{then}{_without_address(everyone)}", now=now)
    record_event(
        deployment.pk,
        actor=None,
        action="incident.paged",
        obj=incident,
        summary=f"INC-{incident.number}: paged level {level}: {_names(fresh) or 'nobody new'}"[:500],
        after={"level": level, "paged": _paged_json(fresh), "next_at": incident.next_escalation_at},
    )


def _names(recipients: list[Recipient]) -> str:
    return ", ".join(r.name + (f" ({r.reason})" if r.reason else "") for r in recipients)


def _paged_json(recipients: list[Recipient]) -> list[dict]:
    return [{"level": r.level, "name": r.name, "email": r.email, "why": r.reason} for r in recipients]


def _late_joiners(incident: Incident) -> tuple[int, list[int], list[Recipient]]:
    """(the current level, the levels, who of the levels paged so far has no page yet)."""
    levels = escalation_levels(incident.deployment_id)
    current = incident.escalation_level or levels[0]
    participants = _participants(incident.deployment_id)  # once for all the levels
    everyone = [
        r
        for level in levels
        if level <= current
        for r in recipients_of_level(incident.deployment_id, level, participants=participants)
    ]
    return current, levels, _not_yet_paged(incident, everyone)


def _needs_joining(incident: Incident) -> bool:
    current, levels, fresh = _late_joiners(incident)
    return bool(fresh) or bool(incident.escalation_level and incident.next_escalation_at is None and levels[-1] > current)


def _join_running_escalation(incident: Incident, now) -> bool:
    """Page who was added since the incident started escalating (contacts, role holders) at the
    levels paged so far, and arm the timer again if a higher level appeared after the last one.
    Returns whether anything changed. Runs under the deployment's lock, the incident row locked."""
    current, levels, fresh = _late_joiners(incident)
    changed = False
    if fresh:
        _send_pages(incident, fresh, now=now)
        started = incident.escalation_level == 0
        incident.escalation_level = current
        incident.save(update_fields=["escalation_level"])
        what = "Paged" if started else "Added since the incident opened, paged"
        _timeline(incident, UpdateKind.PAGE, f"{what} at level {current}: {'; '.join(r.describe() for r in fresh)}.", now=now)
        record_event(
            incident.deployment_id,
            actor=None,
            action="incident.paged",
            obj=incident,
            summary=f"INC-{incident.number}: paged at level {current}: {_names(fresh)}"[:500],
            after={"level": current, "paged": _paged_json(fresh), "late": not started},
        )
        changed = True
    if incident.escalation_level and incident.next_escalation_at is None and levels[-1] > current:
        wait = settings.WARROOM_ESCALATION_WAIT_SECONDS
        incident.next_escalation_at = now + timedelta(seconds=wait)
        incident.save(update_fields=["next_escalation_at"])
        upcoming = min(level for level in levels if level > current)
        _timeline(
            incident, UpdateKind.ESCALATION, f"Level {upcoming} added: paged in {_duration(wait)} unless acknowledged.", now=now
        )
        changed = True
    return changed


def _duration(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def contacts_changed(deployment) -> None:
    """A contact added while an incident escalates is paged now, not at the next beat: after
    the change commits, the escalation task runs on a worker (``deployments.hooks``). If the
    task queue cannot be reached, beat pages them when it can."""
    running = Incident.objects.filter(deployment=deployment, acknowledged_at__isnull=True).exclude(status=IncidentStatus.RESOLVED)
    if running.exists():
        transaction.on_commit(_escalate_soon)


def _escalate_soon() -> None:
    try:
        current_app.send_task(ESCALATE_TASK)
    except Exception:  # the broker is down: beat runs the same task when it is back
        log.warning("could not queue the escalation after a contact change; beat will page them", exc_info=True)


def escalate_due(now=None) -> int:
    """Beat: page the next level of every unacknowledged incident whose wait is over, then page
    whoever joined a running escalation since the last beat. Returns how many incidents it paged for.

    Each incident is claimed with a guarded update on the level and time it was armed
    with, so two beats (or a beat racing an acknowledgement) escalate it once at most;
    late joiners are paged under the deployment's lock, and the Page rows say who has been.
    """
    now = now or timezone.now()
    return _escalate_waiting(now) + _page_late_joiners(now)


def _page_late_joiners(now) -> int:
    joined = 0
    running = (
        Incident.objects.filter(acknowledged_at__isnull=True)
        .exclude(status=IncidentStatus.RESOLVED)
        .filter(Q(severity=Severity.SEV1) | Q(escalation_level__gt=0))
    )
    for candidate in running:
        if not _needs_joining(candidate):
            continue  # the common case, decided without taking the deployment's lock
        with transaction.atomic():
            lock_deployment(candidate.deployment_id)
            incident = (
                Incident.objects.select_for_update(of=("self",))
                .select_related("deployment")
                .filter(pk=candidate.pk, acknowledged_at__isnull=True)
                .exclude(status=IncidentStatus.RESOLVED)
                .first()
            )
            if incident is not None and _join_running_escalation(incident, now):
                _push(incident.deployment_id)
                joined += 1
    return joined


def _escalate_waiting(now) -> int:
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
