"""Every change to a deployment's communications, one function each.

Like deployments.services: permission check (deployments.permissions.access_for),
one transaction, an event in the deployment's hash-chained log, the live push and the
delivery tasks after commit. Deliveries themselves are attempted by comms.delivery.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from comms import conditions, panels, tasks
from comms.models import (
    Channel,
    Delivery,
    Message,
    MessageKind,
    MessageTemplate,
    ScheduledSend,
    ScheduleState,
    SendCondition,
    StatusPage,
    TemplateKind,
    Transport,
    WebhookEndpoint,
)
from comms.rendering import Rendered, TemplateProblem, build_context, check_message, render_message
from deployments import live
from deployments.events import record_event
from deployments.locks import lock_deployment, lock_deployment_of
from deployments.models import Deployment, DeploymentRole, DeploymentState
from deployments.permissions import LEAD, SEE, Access, PermissionDenied, require
from deployments.services import InvalidChange

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
MAX_RECIPIENTS = 200


def _push(deployment_id: int) -> None:
    live.publish_on_commit(deployment_id, lambda: panels.render_comms_push(deployment_id))


def _viewer(actor, deployment) -> Access:
    return require(actor, SEE, deployment)


def _require_lead(actor, deployment, what: str) -> Access:
    return require(actor, LEAD, deployment, what=what)


def may_send(access: Access, template: MessageTemplate) -> bool:
    return access.is_lead or (template.sender_role_id is not None and template.sender_role_id in access.role_ids)


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def _offset_label(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"T{sign}{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"T{sign}{minutes}m"


# --- the context every template sees --------------------------------------------------------


def status_page_url(deployment: Deployment) -> str:
    page = StatusPage.objects.filter(deployment=deployment, enabled=True).first()
    if page is None:
        return ""
    return settings.WARROOM_BASE_URL + reverse("comms:status_page", args=[page.token])


def context_for(deployment: Deployment, *, incident=None) -> dict:
    incident_url = ""
    if incident is not None:
        incident_url = (
            settings.WARROOM_BASE_URL + reverse("deployments:warroom", args=[deployment.pk]) + f"#incident-{incident.pk}"
        )
    return build_context(deployment, incident=incident, status_page_url=status_page_url(deployment), incident_url=incident_url)


class SampleIncident:
    """What an incident alert's preview shows in place of a real incident: every field filled,
    each one saying it is a sample."""

    number = "SAMPLE"
    title = "Sample incident (preview only): checkout returns errors"
    impact = "Sample impact: some users cannot pay"
    description = "This is a sample incident for the preview; a real alert carries the incident's own fields."

    def get_severity_display(self) -> str:
        return "SEV1 — sample"

    def get_status_display(self) -> str:
        return "Investigating (sample)"


def uses_incident(template: MessageTemplate) -> bool:
    return template.kind == TemplateKind.INCIDENT_ALERT or "incident." in f"{template.subject} {template.body}"


def preview(template: MessageTemplate, actor) -> Rendered:
    """What the template would send now (T-0, window and status page as they are now); an
    incident alert is shown with a SampleIncident, since only a real incident sends it."""
    deployment = template.deployment
    _viewer(actor, deployment)
    context = context_for(deployment)
    if uses_incident(template):
        url = settings.WARROOM_BASE_URL + reverse("deployments:warroom", args=[deployment.pk]) + "#incident-sample"
        context = build_context(
            deployment, incident=SampleIncident(), status_page_url=status_page_url(deployment), incident_url=url
        )
    try:
        return render_message(template.subject, template.body, context)
    except TemplateProblem as exc:
        raise InvalidChange(str(exc)) from None


# --- channels -------------------------------------------------------------------------------


def _clean_recipients(raw) -> list[str]:
    items = raw if isinstance(raw, list | tuple) else re.split(r"[,;\s]+", raw or "")
    addresses = list(dict.fromkeys(a.strip() for a in items if a.strip()))
    if not addresses:
        raise InvalidChange("An e-mail channel needs at least one address.")
    if len(addresses) > MAX_RECIPIENTS:
        raise InvalidChange(f"At most {MAX_RECIPIENTS} addresses per channel: use a distribution list.")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidChange(f"“{address}” is not an e-mail address.") from None
    return addresses


def _endpoint(name: str) -> WebhookEndpoint:
    """A webhook channel names an administrator-defined endpoint; its address is never typed here."""
    endpoint = WebhookEndpoint.objects.filter(name=(name or "").strip()).first()
    if endpoint is None:
        names = ", ".join(WebhookEndpoint.objects.values_list("name", flat=True)[:20])
        raise InvalidChange(
            "Choose one of the webhooks an administrator has defined"
            + (f" ({names})." if names else ": none is defined yet (Admin › Comms › Webhook endpoints).")
        )
    return endpoint


@transaction.atomic
def save_channel(
    deployment: Deployment,
    actor,
    *,
    channel_id: int | None = None,
    name: str,
    transport: str,
    recipients="",
    endpoint: str = "",
    carries_pages: bool = False,
    is_active: bool = True,
) -> Channel:
    _require_lead(actor, deployment, "manage message channels")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidChange("Name the channel (up to 100 characters).")
    if transport not in Transport.values:
        raise InvalidChange("Choose e-mail or webhook.")
    fields = {"name": name, "transport": transport, "carries_pages": bool(carries_pages), "is_active": bool(is_active)}
    if transport == Transport.EMAIL:
        fields.update(recipients=_clean_recipients(recipients), endpoint=None)
    else:
        fields.update(recipients=[], endpoint=_endpoint(endpoint))
    if Channel.objects.filter(deployment=deployment, name=name).exclude(pk=channel_id).exists():
        raise InvalidChange(f"There is already a channel called “{name}”.")
    if channel_id is None:
        channel = Channel.objects.create(deployment=deployment, **fields)
        action, before = "comms.channel.added", None
    else:
        lock_deployment(deployment.pk)  # deployments/locks.py: the deployment first
        channel = Channel.objects.select_for_update().filter(deployment=deployment, pk=channel_id).first()
        if channel is None:
            raise Channel.DoesNotExist
        before = {"name": channel.name, "to": channel.target_label, "pages": channel.carries_pages, "active": channel.is_active}
        for key, value in fields.items():
            setattr(channel, key, value)
        channel.save()
        action = "comms.channel.changed"
    record_event(
        deployment.pk,
        actor=actor,
        action=action,
        obj=channel,
        summary=f"Channel “{channel.name}” ({channel.get_transport_display()} → {channel.target_label})",
        before=before,
        after={"name": channel.name, "to": channel.target_label, "pages": channel.carries_pages, "active": channel.is_active},
    )
    _push(deployment.pk)
    return channel


# --- templates ------------------------------------------------------------------------------


@transaction.atomic
def save_template(
    deployment: Deployment,
    actor,
    *,
    template_id: int | None = None,
    name: str,
    subject: str,
    body: str,
    kind: str = TemplateKind.OTHER,
    offset_minutes: int | None = None,
    channel_ids: list[int] = (),
    sender_role_id: int | None = None,
    is_public: bool = False,
    send_states: list[str] | None = None,
    send_condition: str | None = None,
) -> MessageTemplate:
    """Create or change a template; unknown variables, tags or filters are refused here, at save.

    ``send_states``/``send_condition`` say when a scheduled send of it may go out (see
    comms.conditions); None keeps what the template has, or, for a new one, its kind's default.
    """
    _require_lead(actor, deployment, "edit message templates")
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise InvalidChange("Name the template (up to 120 characters).")
    if kind not in TemplateKind.values:
        raise InvalidChange(f"Unknown template kind {kind!r}.")
    if offset_minutes is not None and abs(offset_minutes) > 60 * 24 * 60:
        raise InvalidChange("The planned offset must be within 60 days of T-0.")
    try:
        check_message(subject or "", body or "")
    except TemplateProblem as exc:
        raise InvalidChange(str(exc)) from None
    channels = list(Channel.objects.filter(deployment=deployment, pk__in=list(channel_ids)))
    if len(channels) != len(set(channel_ids)):
        raise InvalidChange("Some channels are not in this deployment.")
    if sender_role_id is not None and not DeploymentRole.objects.filter(deployment=deployment, pk=sender_role_id).exists():
        raise InvalidChange("That sender role is not in this deployment.")
    if MessageTemplate.objects.filter(deployment=deployment, name=name).exclude(pk=template_id).exists():
        raise InvalidChange(f"There is already a template called “{name}”.")
    rule = _send_rule(send_states, send_condition)
    if template_id is None:
        default_states, default_condition = conditions.defaults_for(kind)
        rule.setdefault("send_states", default_states)
        rule.setdefault("send_condition", default_condition)
    fields = {
        **rule,
        "name": name,
        "kind": kind,
        "subject": subject.strip(),
        "body": body,
        "offset_minutes": offset_minutes,
        "sender_role_id": sender_role_id,
        "is_public": bool(is_public),
        "updated_by": actor,
    }
    if template_id is None:
        fields["position"] = MessageTemplate.objects.filter(deployment=deployment).count()
        template = MessageTemplate.objects.create(deployment=deployment, **fields)
        before, action = None, "comms.template.added"
    else:
        lock_deployment(deployment.pk)
        template = MessageTemplate.objects.select_for_update().filter(deployment=deployment, pk=template_id).first()
        if template is None:
            raise MessageTemplate.DoesNotExist
        before = _template_summary(template)
        for key, value in fields.items():
            setattr(template, key, value)
        template.save()
        action = "comms.template.changed"
        # A pending schedule keeps the offset it was made with only if the lead did not move it.
        if before["offset"] != offset_minutes:
            _cancel_pending(template, actor, note="the template's planned time changed")
    template.channels.set(channels)
    record_event(
        deployment.pk,
        actor=actor,
        action=action,
        obj=template,
        summary=f"Message template “{template.name}” saved",
        before=before,
        after=_template_summary(template),
    )
    _push(deployment.pk)
    return template


def _send_rule(send_states, send_condition) -> dict:
    rule = {}
    if send_states is not None:
        states = [s for s in DeploymentState.values if s in set(send_states)]  # in the states' own order
        if not states or len(states) != len(set(send_states)):
            raise InvalidChange("Choose the deployment states in which a scheduled send may go out (at least one).")
        rule["send_states"] = states
    if send_condition is not None:
        if send_condition not in SendCondition.values:
            raise InvalidChange(f"Unknown condition {send_condition[:40]!r}: choose one from the list.")
        rule["send_condition"] = send_condition
    return rule


def _template_summary(template: MessageTemplate) -> dict:
    return {
        "name": template.name,
        "kind": template.kind,
        "subject": template.subject,
        "body_sha": hashlib.sha256(template.body.encode()).hexdigest()[:16],
        "offset": template.offset_minutes,
        "public": template.is_public,
        "sender_role": template.sender_role_id,
        "send_states": list(template.send_states),
        "send_condition": template.send_condition,
    }


@transaction.atomic
def delete_template(template_id: int, actor) -> None:
    lock_deployment_of(MessageTemplate, template_id)
    template = MessageTemplate.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=template_id)
    deployment = template.deployment
    _require_lead(actor, deployment, "delete message templates")
    _cancel_pending(template, actor, note="its template was deleted")
    record_event(
        deployment.pk,
        actor=actor,
        action="comms.template.deleted",
        summary=f"Message template “{template.name}” deleted",
        before=_template_summary(template),
    )
    template.delete()
    _push(deployment.pk)


# --- scheduling -----------------------------------------------------------------------------


@transaction.atomic
def schedule_template(template_id: int, actor) -> ScheduledSend:
    """Send this template automatically at T-0 + its offset (moving with T-0)."""
    lock_deployment_of(MessageTemplate, template_id)
    template = MessageTemplate.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=template_id)
    deployment = template.deployment
    _require_lead(actor, deployment, "schedule messages")
    if deployment.is_finished:
        raise InvalidChange("This deployment is finished: nothing more is scheduled.")
    if template.offset_minutes is None:
        raise InvalidChange("Give the template a planned time (an offset from T-0) first.")
    if not template.channels.filter(is_active=True).exists():
        raise InvalidChange("Choose at least one active channel for this template first.")
    if ScheduledSend.objects.filter(template=template, state=ScheduleState.PENDING).exists():
        raise InvalidChange("This template is already scheduled.")
    scheduled = ScheduledSend(
        deployment=deployment,
        template=template,
        template_name=template.name,
        offset_minutes=template.offset_minutes,
        created_by=actor,
    )
    due = scheduled.due_at(deployment.planned_t0)
    if due <= timezone.now():
        raise InvalidChange(
            f"{_offset_label(template.offset_minutes)} has already passed ({due:%Y-%m-%d %H:%M} UTC): send it by hand instead."
        )
    scheduled.save()
    record_event(
        deployment.pk,
        actor=actor,
        action="comms.scheduled",
        obj=scheduled,
        summary=f"“{template.name}” scheduled for {_offset_label(template.offset_minutes)}",
        after={"offset": template.offset_minutes, "due_now": due},
    )
    _push(deployment.pk)
    return scheduled


def _cancel_pending(template: MessageTemplate, actor, *, note: str) -> int:
    cancelled = 0
    for scheduled in ScheduledSend.objects.select_for_update().filter(template=template, state=ScheduleState.PENDING):
        _settle(scheduled, ScheduleState.CANCELLED, note, actor=actor, summary=f"cancelled: {note}")
        cancelled += 1
    return cancelled


@transaction.atomic
def cancel_scheduled(scheduled_id: int, actor, *, reason: str = "") -> ScheduledSend:
    lock_deployment_of(ScheduledSend, scheduled_id)
    scheduled = ScheduledSend.objects.select_for_update(of=("self",)).select_related("deployment").get(pk=scheduled_id)
    _require_lead(actor, scheduled.deployment, "cancel scheduled messages")
    if scheduled.state != ScheduleState.PENDING:
        raise InvalidChange(f"This message is already {scheduled.get_state_display().lower()}.")
    note = reason.strip()[:300] or f"cancelled by {_name(actor)}"
    _settle(scheduled, ScheduleState.CANCELLED, note, actor=actor, summary=f"cancelled: {note}")
    return scheduled


def send_due(now=None) -> int:
    """Beat: send every scheduled message whose T-0 + offset has come and whose template's
    state and condition hold (comms.conditions); hold the others, with the reason, until
    they do; cancel those the deployment's end made impossible.

    The due time is computed from the deployment's T-0 as it is now. Each row is
    claimed with a guarded update (pending → done) inside the transaction that creates
    its message, under the deployment's lock, so two beats, or a beat and a retry,
    cannot send it twice, and the state it was checked against cannot change meanwhile.
    """
    now = now or timezone.now()
    sent = 0
    candidates = ScheduledSend.objects.filter(state=ScheduleState.PENDING).select_related("deployment")
    for candidate in candidates:
        if not candidate.deployment.is_finished and candidate.due_at(candidate.deployment.planned_t0) > now:
            continue
        with transaction.atomic():
            deployment = lock_deployment(candidate.deployment_id)  # deployments/locks.py: the deployment first
            scheduled = (
                ScheduledSend.objects.select_for_update(of=("self",))
                .select_related("template")
                .filter(pk=candidate.pk, state=ScheduleState.PENDING)
                .first()
            )
            if scheduled is None:
                continue
            template = scheduled.template
            why_never = conditions.never_holds(template, deployment) if template else "its template was deleted"
            if why_never:
                _settle(scheduled, ScheduleState.CANCELLED, why_never, actor=None, summary=f"not sent: {why_never}")
                continue
            if scheduled.due_at(deployment.planned_t0) > now:
                continue
            held = conditions.hold_reason(template, deployment, now)
            if held:
                _hold(scheduled, held, now)
                continue
            was_held = scheduled.held_reason
            scheduled.state, scheduled.claimed_at = ScheduleState.DONE, now
            if was_held:
                scheduled.note = f"held from {conditions.local_time(scheduled.held_since, deployment)}: {was_held}"[:300]
            scheduled.held_reason = ""
            scheduled.save(update_fields=["state", "claimed_at", "note", "held_reason"])
            _send(
                deployment,
                template=template,
                channels=list(template.channels.filter(is_active=True)),
                kind=MessageKind.SCHEDULED,
                sent_by=None,
                scheduled=scheduled,
            )
            sent += 1
    return sent


def _hold(scheduled: ScheduledSend, reason: str, now) -> None:
    """A due message waits: say so once, and again only when the reason changes."""
    if reason == scheduled.held_reason:
        return
    first = not scheduled.held_reason
    scheduled.held_reason = reason[:300]
    scheduled.held_since = scheduled.held_since or now
    scheduled.save(update_fields=["held_reason", "held_since"])
    record_event(
        scheduled.deployment_id,
        actor=None,
        action="comms.held",
        obj=scheduled,
        summary=f"Scheduled “{scheduled.template_name}” "
        + (f"is due but held: {reason}" if first else f"is still held, now because {reason}"),
        after={"reason": reason},
    )
    _push(scheduled.deployment_id)


def _settle(scheduled: ScheduledSend, state: str, note: str, *, actor, summary: str) -> None:
    """A pending scheduled send ends without beat sending it (cancelled, or sent by hand)."""
    scheduled.state, scheduled.note, scheduled.held_reason = state, note[:300], ""
    scheduled.save(update_fields=["state", "note", "held_reason"])
    record_event(
        scheduled.deployment_id,
        actor=actor,
        action="comms.unscheduled" if state == ScheduleState.CANCELLED else "comms.settled",
        obj=scheduled,
        summary=f"Scheduled “{scheduled.template_name}” {summary}",
    )
    _push(scheduled.deployment_id)


def cancel_impossible_sends(deployment: Deployment, reason: str) -> None:
    """hooks.on_finished: the deployment just finished; what can never go out now is cancelled at once
    (inside the state change's transaction, the deployment already locked)."""
    pending = ScheduledSend.objects.select_for_update(of=("self",)).select_related("template")
    for scheduled in pending.filter(deployment=deployment, state=ScheduleState.PENDING):
        why = conditions.never_holds(scheduled.template, deployment) if scheduled.template else "its template was deleted"
        if why:
            _settle(scheduled, ScheduleState.CANCELLED, why, actor=None, summary=f"not sent: {why}")


def due_at_once(deployment: Deployment, new_t0) -> list[str]:
    """hooks.report_due_at_once: the scheduled messages that moving T-0 to ``new_t0`` makes due
    now and that would go out at once (not held), in words, for the lead to confirm."""
    now = timezone.now()
    found = []
    moved = copy.copy(deployment)  # the deployment as it would be: its window moves with T-0
    shift = new_t0 - deployment.planned_t0
    moved.planned_t0 = new_t0
    moved.window_start = deployment.window_start + shift if deployment.window_start else None
    moved.window_end = deployment.window_end + shift if deployment.window_end else None
    pending = ScheduledSend.objects.filter(deployment=deployment, state=ScheduleState.PENDING).select_related("template")
    for scheduled in pending:
        if scheduled.template is None or scheduled.due_at(deployment.planned_t0) <= now:
            continue  # already due (sent or held by now): the move changes nothing for it
        if scheduled.due_at(new_t0) > now:
            continue
        held = conditions.hold_reason(scheduled.template, moved, now)
        channels = ", ".join(c.name for c in scheduled.template.channels.filter(is_active=True)) or "no active channel"
        line = f"“{scheduled.template_name}” ({_offset_label(scheduled.offset_minutes)}) to {channels}"
        found.append(f"{line}: due at once but held ({held})" if held else f"{line}: goes out at once")
    return found


# --- sending --------------------------------------------------------------------------------


@transaction.atomic
def send_template(template_id: int, actor, *, channel_ids: list[int] | None = None) -> Message:
    """Send a template now, from the war room: the lead, or its sender role."""
    lock_deployment_of(MessageTemplate, template_id)
    template = (
        MessageTemplate.objects.select_for_update(of=("self",)).select_related("deployment", "sender_role").get(pk=template_id)
    )
    deployment = template.deployment
    access = _viewer(actor, deployment)
    if not may_send(access, template):
        who = f"the {template.sender_role.name} or the lead" if template.sender_role else "the lead"
        raise PermissionDenied(f"Only {who} may send “{template.name}”.")
    channels = list(template.channels.filter(is_active=True))
    if channel_ids is not None:
        channels = [c for c in channels if c.pk in set(channel_ids)]
    if not channels:
        raise InvalidChange("This template has no active channel: the lead chooses where it goes.")
    message = _send(deployment, template=template, channels=channels, kind=MessageKind.MANUAL, sent_by=actor)
    # Sent by hand: its scheduled twin must not send it a second time.
    for twin in ScheduledSend.objects.select_for_update().filter(template=template, state=ScheduleState.PENDING):
        _settle(
            twin,
            ScheduleState.BY_HAND,
            f"sent by hand by {_name(actor)} at {conditions.local_time(message.created_at, deployment)}",
            actor=actor,
            summary=f"({_offset_label(twin.offset_minutes)}) will not go out: {_name(actor)} sent it by hand",
        )
    return message


def _send(deployment, *, template, channels, kind, sent_by, scheduled=None) -> Message:
    try:
        rendered = render_message(template.subject, template.body, context_for(deployment))
    except TemplateProblem as exc:
        raise InvalidChange(str(exc)) from None
    return compose(
        deployment,
        rendered=rendered,
        kind=kind,
        template=template,
        channels=channels,
        sent_by=sent_by,
        public=template.is_public,
        scheduled=scheduled,
    )


def compose(
    deployment: Deployment,
    *,
    rendered: Rendered,
    kind: str,
    channels: list[Channel] = (),
    email_to: list[tuple[str, str]] = (),
    template: MessageTemplate | None = None,
    sent_by=None,
    sender_label: str = "",
    public: bool = False,
    scheduled: ScheduledSend | None = None,
) -> Message:
    """Record a message and queue one delivery per channel and per direct address
    (``email_to``: (address, label) pairs, e.g. paged contacts). Runs in the caller's
    transaction; the deliveries start after commit."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("compose must be called inside transaction.atomic")
    label = sender_label or (_name(sent_by) if sent_by else "Warroom")
    message = Message.objects.create(
        deployment=deployment,
        template=template,
        scheduled=scheduled,
        kind=kind,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        slack=rendered.slack,
        public=public,
        sent_by=sent_by,
        sender_label=label,
    )
    attempts = settings.WARROOM_COMMS_MAX_ATTEMPTS
    deliveries = [
        Delivery(
            message=message,
            deployment=deployment,
            channel=channel,
            transport=channel.transport,
            recipients=list(channel.recipients),
            target_label=f"{channel.name} ({channel.target_label})"[:500],
            max_attempts=attempts,
        )
        for channel in channels
    ]
    deliveries += [
        Delivery(
            message=message,
            deployment=deployment,
            transport=Transport.EMAIL,
            recipients=[address],
            target_label=f"{who} <{address}>"[:500],
            max_attempts=attempts,
        )
        for address, who in email_to
    ]
    Delivery.objects.bulk_create(deliveries)
    audience = [_audience(channel) for channel in channels] + [f"{who} (1 address)" for _, who in email_to]
    addresses = sum(len(channel.recipients) for channel in channels if channel.transport == Transport.EMAIL) + len(email_to)
    webhooks = sum(1 for channel in channels if channel.transport == Transport.WEBHOOK)
    total = ", ".join(
        part
        for part in (
            f"{addresses} e-mail address{'es' if addresses != 1 else ''}" if addresses else "",
            f"{webhooks} webhook{'s' if webhooks != 1 else ''}" if webhooks else "",
        )
        if part
    )
    to_whom = f"{'; '.join(audience)} — {total}" if audience else "nobody (no channel)"
    record_event(
        deployment.pk,
        actor=sent_by,
        actor_label=None if sent_by else (sender_label or None),
        action="comms.message.queued",
        obj=message,
        summary=f"{message.get_kind_display()}: “{message.subject}” → {to_whom}",
        after={
            "subject": message.subject,
            "audience": audience,
            "email_addresses": addresses,
            "webhooks": webhooks,
            "to": [d.target_label for d in deliveries],
            "text_sha256": hashlib.sha256(message.text.encode()).hexdigest(),
            "public": public,
        },
    )

    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: [tasks.deliver_task.delay(delivery_id=pk) for pk in ids])
    _push(deployment.pk)
    return message


def _audience(channel: Channel) -> str:
    """A channel as the event log names it: its name, kind and size, never a webhook's path."""
    if channel.transport == Transport.EMAIL:
        n = len(channel.recipients)
        return f"{channel.name} (e-mail, {n} recipient{'s' if n != 1 else ''})"
    return f"{channel.name} (webhook {channel.target_label})"


# --- the public status page -----------------------------------------------------------------


@transaction.atomic
def set_status_page(deployment: Deployment, actor, action: str) -> StatusPage | None:
    """enable (or re-enable with the same link), regenerate (a new link; the old one dies), revoke."""
    _require_lead(actor, deployment, "publish or revoke the status page")
    lock_deployment(deployment.pk)
    page = StatusPage.objects.select_for_update().filter(deployment=deployment).first()
    if action == "enable":
        if page is None:
            page = StatusPage.objects.create(deployment=deployment, token=secrets.token_urlsafe(32), updated_by=actor)
        elif page.enabled:
            raise InvalidChange("The status page is already public.")
        else:
            page.enabled, page.updated_by = True, actor
            page.save(update_fields=["enabled", "updated_by", "updated_at"])
        summary = "Public status page enabled"
    elif action == "regenerate":
        if page is None:
            raise InvalidChange("There is no status page yet: enable it first.")
        page.token, page.enabled, page.updated_by = secrets.token_urlsafe(32), True, actor
        page.save(update_fields=["token", "enabled", "updated_by", "updated_at"])
        summary = "Public status page moved to a new link (the old link no longer works)"
    elif action == "revoke":
        if page is None or not page.enabled:
            raise InvalidChange("The status page is not public.")
        page.enabled, page.updated_by = False, actor
        page.save(update_fields=["enabled", "updated_by", "updated_at"])
        summary = "Public status page revoked"
    else:
        raise InvalidChange("Enable, regenerate or revoke the status page.")
    # The token is the page's only protection: it never goes into the event log.
    record_event(deployment.pk, actor=actor, action=f"statuspage.{action}", obj=page, summary=summary)
    _push(deployment.pk)
    return page
