"""Which roles the runbook asks to sign off at the end.

Runbooks end with a "Sign-Off" section listing roles with blanks for a name and a date
("- Product Owner: ______ Date: ____", imported as fields "Product Owner" and "Product
Owner — Date"), or checkboxes of the same shape. A role of the deployment is asked to
sign when a line in such a section starts with its name, or when a sign-off step is
assigned to it. A runbook without a sign-off section asks every role someone holds.
"""

from __future__ import annotations

import re

from django.db.models import Q

from deployments.models import Deployment, DeploymentRole, Item, Step
from reports.models import SignOff

# Postgres regex (case-insensitive): "Sign-Off", "Sign off", "Signoff", "Final sign-off".
SIGN_OFF_TITLE = r"sign[ -]?off"
_MARKUP = re.compile(r"[*_`\[\]]")


def role_named_by(text: str, roles: list[DeploymentRole]) -> DeploymentRole | None:
    """The role a sign-off line starts with; the longest name wins ("DevOps Engineer", not "DevOps")."""
    plain = _MARKUP.sub("", text).strip().casefold()
    best = None
    for role in roles:
        name = role.name.casefold()
        if plain.startswith(name) and (len(plain) == len(name) or not plain[len(name)].isalnum()):
            if best is None or len(name) > len(best.name):
                best = role
    return best


def sign_off_step_ids(deployment: Deployment) -> dict[int, int | None]:
    """Steps of the runbook's sign-off section, with the role each is assigned to."""
    in_section = Q(title__iregex=SIGN_OFF_TITLE) | Q(phase__title__iregex=SIGN_OFF_TITLE)
    return dict(Step.objects.filter(deployment=deployment).filter(in_section).values_list("pk", "role_id"))


def requested_roles(deployment: Deployment) -> list[DeploymentRole]:
    roles = list(DeploymentRole.objects.filter(deployment=deployment))
    steps = sign_off_step_ids(deployment)
    if not steps:
        holders = set(
            DeploymentRole.objects.filter(deployment=deployment, participants__isnull=False).values_list("pk", flat=True)
        )
        return [role for role in roles if role.pk in holders]
    named = {step_role for step_role in steps.values() if step_role}
    for text in Item.objects.filter(step_id__in=steps).values_list("text", flat=True):
        role = role_named_by(text, roles)
        if role is not None:
            named.add(role.pk)
    return [role for role in roles if role.pk in named]


def signed_role_ids(deployment: Deployment) -> set[int]:
    """The roles that signed the report off (a ``deployments.hooks.report_sign_offs`` provider)."""
    return set(SignOff.objects.filter(deployment=deployment).values_list("role_id", flat=True))
