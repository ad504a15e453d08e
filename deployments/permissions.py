"""The one place that says who may do what in a deployment.

Object permissions live in django-guardian (``view_deployment`` for every
participant, ``manage_deployment`` for leads); which items a person may act on
follows from the roles they hold in that deployment. Views, the API, websocket
consumers, exports and services all ask here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from deployments.models import Deployment, Participant

VIEW = "view_deployment"
MANAGE = "manage_deployment"


class PermissionDenied(Exception):
    """The actor may see the deployment but may not do this; the message says why."""


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
        raise DjangoPermissionDenied(f"You may not {what}: ask an administrator for the permission (a group in the admin).")


def ensure_default_groups(**_kwargs) -> None:
    """Create the default groups with their permissions (after migrate; harmless to repeat)."""
    from django.contrib.auth.models import Group, Permission

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


def get_visible_deployment_or_404(user, pk) -> Deployment:
    """Unknown and invisible look the same: a 404, so ids cannot be probed."""
    try:
        return visible_deployments(user).get(pk=pk)
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


def access_for(user, deployment) -> Access:
    if not user.is_authenticated or not user.is_active:
        return Access(user_id=None)
    participant = Participant.objects.filter(deployment=deployment, user=user).prefetch_related("roles").first()
    if user.is_superuser and participant is None:
        return Access(user_id=user.pk, can_view=True, is_lead=True)
    if participant is None or not user.has_perm(f"deployments.{VIEW}", deployment):
        return Access(user_id=user.pk)
    is_lead = participant.is_lead and user.has_perm(f"deployments.{MANAGE}", deployment)
    return Access(
        user_id=user.pk,
        can_view=True,
        is_lead=is_lead,
        role_ids=frozenset(role.pk for role in participant.roles.all()),
    )


def grant_participation(user, deployment, *, is_lead: bool) -> None:
    assign_perm(VIEW, user, deployment)
    if is_lead:
        assign_perm(MANAGE, user, deployment)
    else:
        remove_perm(MANAGE, user, deployment)


def revoke_participation(user, deployment) -> None:
    remove_perm(VIEW, user, deployment)
    remove_perm(MANAGE, user, deployment)
