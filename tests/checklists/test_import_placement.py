"""Which runbook an import goes to: a title shared by an unrelated runbook is not enough."""

from __future__ import annotations

import pytest

from checklists.importing import import_runbook
from checklists.models import Runbook

pytestmark = pytest.mark.django_db

ORIGINAL = """# Production Deployment Checklist

## Preparation
### Back up the database
- [ ] Backup taken
### Announce the window
- [ ] Status page updated

## Deployment
### Apply migrations
- [ ] Migrations applied
### Smoke tests
- [ ] Login works
"""

# The same runbook, edited: a step renamed, an item added.
EDITED = ORIGINAL.replace("### Smoke tests", "### Smoke tests and sign-off").replace(
    "- [ ] Login works", "- [ ] Login works\n- [ ] QA sign-off"
)

# Another team's runbook that happens to carry the same title.
UNRELATED = """# Production Deployment Checklist

## Canary
### Stage 1 (5%)
- [ ] Shift 5% of traffic
### Stage 2 (50%)
- [ ] Shift 50% of traffic

## Cleanup
### Remove the old pods
- [ ] Old pods deleted
"""


def test_an_unrelated_runbook_sharing_a_title_becomes_a_new_runbook():
    first = import_runbook(ORIGINAL)
    second = import_runbook(UNRELATED)
    assert second.created_runbook and second.version.runbook_id != first.version.runbook_id
    assert "structure differs" in second.placement
    assert Runbook.objects.filter(name="Production Deployment Checklist").count() == 2


def test_the_same_runbook_edited_becomes_its_next_version():
    first = import_runbook(ORIGINAL)
    second = import_runbook(EDITED)
    assert not second.created_runbook
    assert (second.version.runbook_id, second.version.number) == (first.version.runbook_id, 2)
    assert "phase and step titles are the same" in second.placement


def test_the_same_file_again_is_the_next_version():
    first = import_runbook(UNRELATED)
    again = import_runbook(UNRELATED)
    assert again.version.runbook_id == first.version.runbook_id and "same file" in again.placement


def test_the_user_chooses_new_or_which_runbook():
    first = import_runbook(ORIGINAL)
    forced_new = import_runbook(EDITED, as_new=True)
    assert forced_new.created_runbook
    chosen = import_runbook(UNRELATED, runbook=first.version.runbook)
    assert chosen.version.runbook_id == first.version.runbook_id and "as chosen" in chosen.placement


def test_a_dry_run_says_where_the_file_would_go_and_the_version_keeps_what_was_recognised():
    import_runbook(ORIGINAL)
    assert "structure differs" in import_runbook(UNRELATED, dry_run=True).placement
    version = import_runbook(UNRELATED).version
    version.refresh_from_db()
    assert [stage["percent"] for stage in version.recognised["rollout_stages"]] == [5, 50]
