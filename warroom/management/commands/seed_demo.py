"""Demo users and a demo deployment, so a newcomer can click through right after `make run`.

Idempotent: a second run finds everything in place and changes nothing.
"""

import hashlib
import os
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from checklists.importing import import_runbook
from checklists.models import RunbookVersion
from comms.defaults import add_runbook_templates
from deployments import services
from deployments.models import Deployment
from rollouts import runs, setup

DEMO_DIR = Path(__file__).resolve().parents[3] / "checklists" / "demo"
DEMO_DEPLOYMENT = "Expense accounts (MBM-116) production release"

# username → (first name, last name, role-name keywords this person takes in the demo)
USERS = {
    "lead": ("Lena", "Lead", ("lead developer",)),
    "po": ("Pat", "Owner", ("product owner",)),
    "qa": ("Quinn", "Assurance", ("qa",)),
    "devops": ("Devi", "Ops", ("devops",)),
    "dba": ("Dana", "Base", ("dba", "database", "security")),
    "outsider": ("Otto", "Stranger", ()),
}


def _roles_for(deployment, username: str) -> list[str]:
    """The demo deployment's roles this demo user takes (by the keywords in USERS)."""
    keywords = USERS[username][2]
    return [r for r in deployment.roles.values_list("name", flat=True) if any(k in r.lower() for k in keywords)]


class Command(BaseCommand):
    help = "Create demo users and a demo deployment (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="warroom-demo", help="Password for every demo user")

    def handle(self, *args, password, **options):
        users = {}
        User = get_user_model()
        for username, (first, last, _) in USERS.items():
            email = f"{username}@example.com"  # where a SEV1 page to this person goes (the configured backend)
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, "email": email}
            )
            if created or not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            if not user.email:
                user.email = email
                user.save(update_fields=["email"])
            users[username] = user
        if not users["lead"].is_staff:
            users["lead"].is_staff = users["lead"].is_superuser = True
            users["lead"].save(update_fields=["is_staff", "is_superuser"])

        versions = {}
        for path in sorted(DEMO_DIR.glob("*.md")):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            version = RunbookVersion.objects.filter(source_sha256=digest).order_by("number").first()
            if version is None:
                version = import_runbook(data, filename=path.name, user=users["lead"]).version
                self.stdout.write(f"Imported runbook {version}")
            versions[path.stem] = version

        port = os.environ.get("WARROOM_PORT", "8000")
        target = setup.ensure_demo_target(base_url=f"http://127.0.0.1:{port}")
        setup.apply_demo_actions(versions["expense-accounts-procedure"], base_url=f"http://127.0.0.1:{port}")

        if not Deployment.objects.filter(name=DEMO_DEPLOYMENT).exists():
            version = versions["expense-accounts-procedure"]
            deployment = services.create_deployment(
                version,
                lead=users["lead"],
                name=DEMO_DEPLOYMENT,
                service="expenses",
                version_label="1.16.0",
                environment="production",
                planned_t0=timezone.now().replace(second=0, microsecond=0) + timedelta(hours=2),
                timezone_name="Europe/Berlin",
            )
            for username in USERS:
                if username not in ("lead", "outsider"):
                    mine = _roles_for(deployment, username)
                    services.set_participant(deployment, users["lead"], users[username], role_names=mine)
            runs.bind_target(deployment, users["lead"], target)
            self.stdout.write(f"Created demo deployment #{deployment.pk}: {deployment.name}")

        demo = Deployment.objects.filter(name=DEMO_DEPLOYMENT).first()
        if demo is not None and not demo.is_finished:
            # The lead also holds the Lead Developer role, so that sign-off (and its steps) has
            # someone; done here, not only at creation, to mend a demo seeded before.
            held = set(demo.participants.filter(user=users["lead"]).values_list("roles__name", flat=True))
            wanted = _roles_for(demo, "lead")
            if not set(wanted) <= held:
                services.set_participant(
                    demo, users["lead"], users["lead"], role_names=sorted((held - {None}) | set(wanted)), is_lead=True
                )
                self.stdout.write(f"The demo lead now holds: {', '.join(wanted)}")

        if demo is not None and not demo.is_finished:
            added = add_runbook_templates(demo, users["lead"], users_address="all-users@example.com")
            if added:
                self.stdout.write(f"Added {added} demo message templates (runbook e-mails, incident alert)")

        self.stdout.write(
            self.style.SUCCESS(f"Demo logins (password {password!r}): " + ", ".join(USERS) + " — 'lead' is also a Django admin.")
        )
