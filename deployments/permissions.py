"""The one place that says who may do what in a deployment.

Object permissions live in django-guardian (``view_deployment`` for every
participant, ``manage_deployment`` for leads); which items a person may act on
follows from the roles they hold in that deployment. Views, the API, websocket
consumers, exports and services all ask here.

Actors that are not people (a pipeline's token, a task run, a gate decision…) are
``deployments.actors.SystemActor``s with their own, narrow rights: ``SYSTEM_RIGHTS``
below is the whole list. None of them may do anything because it is "the system".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import Group, Permission
from django.contrib.postgres.aggregates import ArrayAgg

# Django's own: views answer 403 with its message. Re-exported so every app imports it from here.
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from checklists.models import ItemKind
from deployments import hooks
from deployments.actors import SystemActor, SystemKind
from deployments.models import Deployment, DeploymentState, Item, Participant

VIEW = "view_deployment"
MANAGE = "manage_deployment"

# What each kind of system actor may do; nothing else.
READ_GATES = "read gates and wait on them"
TICK_PLAIN_LINE = "tick or untick a plain checklist line"
TICK_OWN_STEP_LINE = "tick a checklist line of its own step"
WRITE_GATE_LINE = "write a gate's decision on its line"
WRITE_APPROVAL_LINE = "keep a required approval's line in step"
PAUSE_DEPLOYMENT = "pause the deployment"
ADD_GATE = "open a gate"
CANCEL_GATES = "cancel open gates of a finished deployment"
TAKE_TRAFFIC_BACK = "abort the rollout (traffic back to the stable version)"

SYSTEM_RIGHTS: dict[SystemKind, frozenset[str]] = {
    SystemKind.PIPELINE: frozenset({READ_GATES, TICK_PLAIN_LINE}),
    SystemKind.TASK_RUN: frozenset({TICK_OWN_STEP_LINE}),
    SystemKind.GATE_DECISION: frozenset({WRITE_GATE_LINE, PAUSE_DEPLOYMENT, TAKE_TRAFFIC_BACK}),
    SystemKind.APPROVALS: frozenset({WRITE_APPROVAL_LINE}),
    SystemKind.INCIDENT: frozenset({ADD_GATE}),
    SystemKind.ROLLOUT: frozenset({PAUSE_DEPLOYMENT}),
    SystemKind.WARROOM: frozenset({CANCEL_GATES, TAKE_TRAFFIC_BACK}),
}


# --- rights outside any one deployment ------------------------------------------------------
# Django model permissions, granted to people through groups managed in the admin. The
# groups below exist from the first migrate on (see ``ensure_default_groups``).
# Runbook rights are the checklists app's own (checklists.services.can_read_runbooks / can_edit_runbooks).
CREATE_DEPLOYMENT = "deployments.add_deployment"

DEFAULT_GROUPS = {
    "Release managers": ["deployments.add_deployment", "checklists.view_runbook"],
    "Runbook editors": ["checklists.view_runbook", "checklists.add_runbook", "checklists.change_runbook"],
}


def _active(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def may_create_deployments(user) -> bool:
    return _active(user) and user.has_perm(CREATE_DEPLOYMENT)


def require_global(user, check, what: str) -> None:
    """Raise Django's PermissionDenied (a 403 everywhere) unless ``check(user)`` holds."""
    if not check(user):
        raise PermissionDenied(f"You may not {what}: ask an administrator for the permission (a group in the admin).")


def ensure_default_groups(**_kwargs) -> None:
    """Create the default groups with their permissions (after migrate; harmless to repeat)."""
    for name, codenames in DEFAULT_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)


def visible_deployments(user):
    if not user.is_authenticated or not user.is_active:
        return Deployment.objects.none()
    return get_objects_for_user(user, f"deployments.{VIEW}", klass=Deployment, accept_global_perms=False)


def get_visible_deployment_or_404(user, pk, *, related: tuple[str, ...] = ()) -> Deployment:
    """Unknown and invisible look the same: a 404, so ids cannot be probed. ``related``: rows
    to fetch with it (``select_related``)."""
    try:
        return visible_deployments(user).select_related(*related).get(pk=pk)
    except (Deployment.DoesNotExist, ValueError, TypeError):
        raise Http404("No such deployment") from None


@dataclass(frozen=True)
class Access:
    """What one person may do in one deployment, computed once per request or message."""

    user_id: int | None
    can_view: bool = False
    is_lead: bool = False
    role_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_observer(self):
        return self.can_view and not self.is_lead and not self.role_ids

    def can_act_on_step(self, step) -> bool:
        """Items, fields and choices: holders of the step's role, or the lead.

        A step with no role is open to anyone holding a role in the deployment.
        """
        if self.is_lead:
            return True
        if step.role_id is None:
            return bool(self.role_ids)
        return step.role_id in self.role_ids

    def can_undo(self, item) -> bool:
        return self.is_lead or (item.done_by_id is not None and item.done_by_id == self.user_id)


def access_for(user, deployment, *, participants=None) -> Access:
    """``participants``: the deployment's participants with their roles, when the caller has
    loaded them already (the war-room page), so they are not read again."""
    if not user.is_authenticated or not user.is_active:
        return Access(user_id=None)
    if participants is not None:
        participant = next((p for p in participants if p.user_id == user.pk), None)
    else:
        participant = (
            Participant.objects.filter(deployment=deployment, user=user)
            .annotate(held_role_ids=ArrayAgg("roles__id", filter=Q(roles__isnull=False), default=[]))
            .only("id", "is_lead", "user_id")
            .first()
        )  # with its roles' ids, in one query
    if user.is_superuser and participant is None:
        return Access(user_id=user.pk, can_view=True, is_lead=True)
    if participant is None:
        return Access(user_id=user.pk)
    perms = _object_perms(user, deployment)
    if VIEW not in perms:
        return Access(user_id=user.pk)
    is_lead = participant.is_lead and MANAGE in perms
    return Access(
        user_id=user.pk,
        can_view=True,
        is_lead=is_lead,
        role_ids=frozenset(
            participant.held_role_ids if hasattr(participant, "held_role_ids") else (role.pk for role in participant.roles.all())
        ),
    )


def _object_perms(user, deployment) -> set[str]:
    """The codenames guardian grants ``user`` on ``deployment``, directly or through a group.

    Guardian's checker asks for the two halves in two queries; the same two querysets
    (guardian builds both) go to the database as one UNION.
    """
    checker = ObjectPermissionChecker(user)
    if user.is_superuser:  # guardian: a superuser holds every permission of the model
        return set(checker.get_perms(deployment))
    return set(checker.get_user_perms(deployment).union(checker.get_group_perms(deployment)))


def grant_participation(user, deployment, *, is_lead: bool) -> None:
    assign_perm(VIEW, user, deployment)
    if is_lead:
        assign_perm(MANAGE, user, deployment)
    else:
        remove_perm(MANAGE, user, deployment)


def revoke_participation(user, deployment) -> None:
    remove_perm(VIEW, user, deployment)
    remove_perm(MANAGE, user, deployment)


# --- system actors -----------------------------------------------------------------------


def system_may(actor: SystemActor, right: str) -> bool:
    return right in SYSTEM_RIGHTS.get(actor.kind, frozenset())


# --- what a person may do in one deployment ----------------------------------------------------
# The named actions every service asks about; the rule for each lives here and nowhere else.
SEE = "see"  # participants
ACT = "act"  # anyone holding a role, or the lead (observers watch)
LEAD = "lead"  # the deployment lead

_REFUSALS = {
    ACT: "Observers watch; people holding a role, or the lead, {what}.",
    LEAD: "Only the deployment lead may {what}.",
}


def allowed(access: Access, action: str) -> bool:
    if action == SEE:
        return access.can_view
    if action == ACT:
        return access.can_view and (access.is_lead or bool(access.role_ids))
    if action == LEAD:
        return access.can_view and access.is_lead
    raise ValueError(f"Unknown action {action!r}")


def require(actor, action: str, deployment: Deployment, *, what: str = "do this", not_found=None, refusal: str = "") -> Access:
    """May ``actor`` do ``action`` in ``deployment``? Returns their Access, or raises:
    ``not_found`` (default ``Deployment.DoesNotExist``, a 404) for someone who may not even
    see it — unknown and invisible look the same — and Django's PermissionDenied (403) with
    what they may not do (``refusal`` replaces the standard sentence)."""
    access = access_for(actor, deployment)
    if not access.can_view:
        raise (not_found or Deployment.DoesNotExist)()
    if not allowed(access, action):
        raise PermissionDenied(refusal or _REFUSALS.get(action, "You may not {what}.").format(what=what))
    return access


def require_system(actor: SystemActor, right: str) -> None:
    if not system_may(actor, right):
        raise PermissionDenied(f"{actor.label} may not {right}.")


# --- checklist lines ---------------------------------------------------------------------

# Lines that follow a record of their own, and what a person is told who tries to write one.
_OWNED_LINES = {
    SystemKind.GATE_DECISION: (WRITE_GATE_LINE, "A gate is decided by its vote: use the voting panel."),
    SystemKind.APPROVALS: (
        WRITE_APPROVAL_LINE,
        "This line follows its approval: give or withdraw it in the approvals panel.",
    ),
}


def line_owner(item: Item) -> SystemKind | None:
    """Which internal actor keeps this line (gate lines: the gate decision; lines other apps
    claim, e.g. required approvals); None for a plain line that people work."""
    if item.kind == ItemKind.GATE:
        return SystemKind.GATE_DECISION
    return hooks.line_owner(item)


def require_item_change(actor, item: Item, *, undoing: bool, rewrites_evidence: bool, access: Access | None = None) -> None:
    """May ``actor`` change this line? ``undoing``: the change takes a done line back;
    ``rewrites_evidence``: it replaces the note of a line that is done. ``access``: the
    person's access to the deployment, when the caller has read it already.

    People: holders of the step's role or the lead (a step without a role: anyone holding
    a role); undo by whoever did it or the lead; lines that follow a gate or an approval
    never. A person who may not see the deployment gets Item.DoesNotExist (a 404).
    """
    owner = line_owner(item)
    if isinstance(actor, SystemActor):
        _require_system_item_change(actor, item, owner, undoing=undoing, rewrites_evidence=rewrites_evidence)
        return
    access = access or access_for(actor, item.deployment)
    if not access.can_view:
        raise Item.DoesNotExist
    if not access.can_act_on_step(item.step):
        role = item.step.role.name if item.step.role else "a role in this deployment"
        raise PermissionDenied(f"Only the {role} or the lead may change this item.")
    if owner is not None:
        raise PermissionDenied(_OWNED_LINES.get(owner, (None, "This line is kept by Warroom."))[1])
    if undoing and not access.can_undo(item):
        raise PermissionDenied("Only the person who did this, or the lead, may undo it.")


def _require_system_item_change(actor: SystemActor, item: Item, owner, *, undoing: bool, rewrites_evidence: bool) -> None:
    if owner is not None:
        right = _OWNED_LINES.get(owner, (None, ""))[0]
        if right is None or not system_may(actor, right):
            what = "a gate's line: only its vote decides it" if owner == SystemKind.GATE_DECISION else "kept by its own record"
            raise PermissionDenied(f"{actor.label} may not change “{item.text[:80]}”: it is {what}.")
        return
    if item.kind != ItemKind.CHECK:
        raise PermissionDenied(f"{actor.label} may tick checklist lines only; “{item.text[:80]}” is a {item.kind} for a person.")
    own_step = system_may(actor, TICK_OWN_STEP_LINE) and actor.step_id == item.step_id
    if not (system_may(actor, TICK_PLAIN_LINE) or own_step):
        raise PermissionDenied(f"{actor.label} may not change “{item.text[:80]}”.")
    done_by_this_actor = item.done_by_id is None and item.done_by_system == actor.label
    if (undoing or rewrites_evidence) and not done_by_this_actor:
        raise PermissionDenied(f"{actor.label} may not undo or rewrite what someone else did.")


# --- the deployment's state ----------------------------------------------------------------


def require_state_change(actor, deployment: Deployment, new_state: str) -> None:
    """The lead moves the deployment; a gate decision or the rollout controller may only pause it."""
    if isinstance(actor, SystemActor):
        if new_state != DeploymentState.PAUSED:
            raise PermissionDenied(f"{actor.label} may not move the deployment to {new_state}.")
        require_system(actor, PAUSE_DEPLOYMENT)
        return
    if not access_for(actor, deployment).is_lead:
        raise PermissionDenied("Only the deployment lead may change the deployment's state.")
