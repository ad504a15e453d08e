"""axe-core, run in the browser on the pages people use: no serious or critical violation.

The engine is the real axe-core (bundled in the axe-playwright-python package) evaluated in
Chromium against the real server; each page is checked as the person who uses it would see it.
"""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse

from checklists.importing import import_runbook
from deployments import services as deployment_services
from deployments.models import DeploymentState
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

RUNBOOK = """# Payments release

## Before

### Step 1: Backup
**Responsible:** DBA

- [ ] Backup taken
- Time Completed: ____

## During

### Step 2: Go/no-go
- ☐ GO ☐ NO-GO
""".encode()


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") in ("serious", "critical"):
            targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    return found


@pytest.fixture
def editor(db):
    user = make_user("editor")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def test_the_pages_people_use_have_no_serious_violation(crew, login, editor):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        deployment_services.change_state(deployment.pk, people["lead"], state)
    pages = {
        "po": [
            f"/deployments/{deployment.pk}/",
            f"/deployments/{deployment.pk}/tv/",
            f"/deployments/{deployment.pk}/me/",
        ],
        "lead": [f"/deployments/{deployment.pk}/", reverse("reports:deployment", args=[deployment.pk]), "/"],
    }
    problems = {}
    for username, urls in pages.items():
        page = login(username)
        for url in urls:
            page.goto(url)
            page.wait_for_load_state("networkidle")
            problems[f"{username} {url}"] = serious_violations(page)
    version = import_runbook(RUNBOOK, filename="payments.md").version
    page = login("editor")
    for url in (reverse("checklists:version", args=[version.pk]), reverse("checklists:import")):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        problems[f"editor {url}"] = serious_violations(page)
    assert {where: found for where, found in problems.items() if found} == {}
