"""Small builders for test data. Domain rows are made through the services where one exists."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.utils import timezone

from checklists.models import ItemKind, Runbook, RunbookVersion, TemplateItem, TemplatePhase, TemplateRole, TemplateStep
from deployments import services
from deployments.permissions import ensure_default_groups

PASSWORD = "correct horse battery staple"

PERSONAS = {
    "lead": ("Lena", "Lead"),
    "po": ("Pat", "Owner"),
    "qa": ("Quinn", "Assurance"),
    "devops": ("Devi", "Ops"),
    "dba": ("Dana", "Base"),
    "observer": ("Olli", "Watcher"),
    "outsider": ("Otto", "Stranger"),
}


@cache
def _password_hash() -> str:
    """Hash once per run: real PBKDF2 (so daphne logins work), without paying for it per user."""
    return make_password(PASSWORD)


def make_user(username: str):
    first, last = PERSONAS.get(username, (username.title(), ""))
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"first_name": first, "last_name": last, "password": _password_hash()}
    )
    if username == "lead":
        release_manager(user)
    return user


def release_manager(user):
    """Put ``user`` in the "Release managers" group: they may read runbooks and create deployments."""
    group, _ = Group.objects.get_or_create(name="Release managers")
    if not group.permissions.exists():
        ensure_default_groups()
    user.groups.add(group)
    for cached in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cached, None)
    return user


def make_version(*, steps: int = 2, items_per_step: int = 3, name: str = "Test runbook") -> RunbookVersion:
    """A runbook version with roles QA Lead / DevOps Engineer / Product Owner, checkboxes,
    one field, one choice and one gate — the shapes the war room shows."""
    runbook = Runbook.objects.create(name=name)
    version = RunbookVersion.objects.create(runbook=runbook, number=1, title=name)
    roles = {
        role: TemplateRole.objects.create(version=version, name=role, position=i)
        for i, role in enumerate(["QA Lead", "DevOps Engineer", "Product Owner", "DBA"])
    }
    phase = TemplatePhase.objects.create(version=version, position=0, title="Deployment")
    role_cycle = ["DevOps Engineer", "QA Lead"]
    for s in range(steps):
        step = TemplateStep.objects.create(
            phase=phase,
            position=s,
            title=f"Step {s + 1}",
            role=roles[role_cycle[s % 2]],
            offset_minutes=s * 15,
            duration_min_minutes=10,
            duration_max_minutes=15,
        )
        for i in range(items_per_step):
            TemplateItem.objects.create(step=step, position=i, text=f"Check {s + 1}.{i + 1}")
    extra = TemplateStep.objects.create(phase=phase, position=steps, title="Sign-off", role=roles["Product Owner"])
    TemplateItem.objects.create(step=extra, position=0, kind=ItemKind.FIELD, text="Time Completed")
    TemplateItem.objects.create(step=extra, position=1, kind=ItemKind.CHOICE, text="Smoke tests", options=["Success", "Failed"])
    TemplateItem.objects.create(step=extra, position=2, kind=ItemKind.GATE, text="Decision", options=["GO", "NO-GO"])
    return version


def make_deployment(*, lead=None, version=None, t0=None, **kwargs):
    lead = release_manager(lead or make_user("lead"))
    version = version or make_version(**kwargs)
    return services.create_deployment(
        version,
        lead=lead,
        name="Release 1.2",
        service="smartwallet",
        version_label="1.2.0",
        environment="production",
        planned_t0=t0 or timezone.now() + timedelta(hours=1),
        timezone_name="Europe/Berlin",
    )


def staff_deployment(deployment, lead):
    """Give the deployment its usual crew: po, qa, devops, dba, and an observer."""
    people = {}
    for username, roles in [
        ("po", ["Product Owner"]),
        ("qa", ["QA Lead"]),
        ("devops", ["DevOps Engineer"]),
        ("dba", ["DBA"]),
        ("observer", []),
    ]:
        people[username] = make_user(username)
        services.set_participant(deployment, lead, people[username], role_names=roles)
    people["lead"] = lead
    people["outsider"] = make_user("outsider")
    return people
