"""The template editor: service functions, the htmx views around them, and who may use them.

Personas: an ``editor`` (staff), a ``granted`` user holding checklists.change_runbook,
a ``reader`` (logged in, nothing else) and anonymous visitors.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from checklists import services
from checklists.importing import export_markdown, import_runbook
from checklists.models import (
    ItemKind,
    Runbook,
    RunbookEdit,
    RunbookVersion,
    TemplateItem,
    TemplatePhase,
    TemplateRole,
    TemplateStep,
)
from checklists.services import TemplateEditError
from deployments import services as deployment_services
from deployments.models import Deployment
from tests.factories import make_user, release_manager

SHARED = Path(__file__).resolve().parents[2] / "checklists" / "demo"

SMALL_RUNBOOK = """# Payments release

## Before

### Step 1: Backup

**Responsible:** DevOps Engineer

**Time Estimate**: 10-15 minutes

```bash
pg_dump payments > backup.sql
```

- [ ] Backup taken
  - [ ] Size checked
  - [ ] Copied offsite
- [ ] Restore tested

**Time Completed:** ____

### Step 2: Announce

**Responsible:** Product Owner

- [ ] Users notified

## During

### Step 3: Deploy

- [ ] Deploy code
- [ ] Smoke tests

**Decision:** ☐ GO ☐ NO-GO

### Step 4: Verify

**Responsible:** QA Lead

- [ ] Dashboards green
"""


@pytest.fixture
def editor(db):
    user = make_user("editor")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def granted(db):
    user = make_user("granted")
    user.user_permissions.add(Permission.objects.get(codename="change_runbook", content_type__app_label="checklists"))
    return user


@pytest.fixture
def reader(db):
    """A release manager: reads runbooks (to make deployments from them), does not edit them."""
    return release_manager(make_user("reader"))


def test_people_without_a_runbook_permission_read_no_runbook(version):
    """Logging in is not enough to read every team's runbooks."""
    stranger = make_user("stranger")
    for url in (
        reverse("checklists:list"),
        reverse("checklists:runbook", args=[version.runbook_id]),
        reverse("checklists:version", args=[version.pk]),
        reverse("checklists:export", args=[version.pk]),
        reverse("deployments:create"),
    ):
        response = client_for(stranger).get(url)
        assert response.status_code == 403, url
        assert "Payments" not in response.content.decode()
    assert 'href="/runbooks/"' not in client_for(stranger).get("/").content.decode()
    form = {"runbook_version": version.pk, "name": "Mine now", "service": "s", "version_label": "1", "environment": "prod"}
    form |= {"planned_t0": "2030-01-01T10:00", "timezone": "UTC"}
    assert client_for(stranger).post(reverse("deployments:create"), form).status_code == 403
    assert not Deployment.objects.exists()


@pytest.fixture
def version(db):
    return import_runbook(SMALL_RUNBOOK, filename="payments.md").version


def step_named(version, prefix) -> TemplateStep:
    return TemplateStep.objects.get(phase__version=version, title__startswith=prefix)


def step_titles(version) -> list[list[str]]:
    return [list(p.steps.order_by("position", "id").values_list("title", flat=True)) for p in version.phases.order_by("position")]


def item_order(step) -> list[tuple[str, str | None]]:
    """(text, parent text) in position order: the reading order the snapshot and export use."""
    return [(i.text, i.parent.text if i.parent else None) for i in step.items.select_related("parent").order_by("position", "id")]


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def hx_post(client, url, data=None):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true")


# --- who may edit ---------------------------------------------------------------------------


def test_can_edit_runbooks(db, editor, granted, reader):
    superuser = make_user("root")
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    retired = make_user("retired")
    retired.is_staff, retired.is_active = True, False
    retired.save(update_fields=["is_staff", "is_active"])
    assert services.can_edit_runbooks(editor)
    assert services.can_edit_runbooks(granted)
    assert services.can_edit_runbooks(superuser)
    assert not services.can_edit_runbooks(reader)
    assert not services.can_edit_runbooks(retired)
    assert not services.can_edit_runbooks(AnonymousUser())
    assert not services.can_edit_runbooks(None)


def test_services_refuse_readers(version, reader):
    step = step_named(version, "Step 1")
    with pytest.raises(PermissionDenied):
        services.rename_step(reader, step.pk, "Nope")
    with pytest.raises(PermissionDenied):
        services.add_item(reader, step.pk, text="Nope")
    step.refresh_from_db()
    assert step.title == "Step 1: Backup"


# --- renaming -------------------------------------------------------------------------------------


def test_rename_version_phase_and_step(version, editor):
    phase = version.phases.get(title="Before")
    step = step_named(version, "Step 1")
    services.rename_version(editor, version.pk, "  Payments   release 2 ")
    services.rename_phase(editor, phase.pk, "Preparation")
    services.rename_step(editor, step.pk, "Step 1: Back up\nthe database")
    version.refresh_from_db()
    phase.refresh_from_db()
    step.refresh_from_db()
    assert (version.title, phase.title, step.title) == ("Payments release 2", "Preparation", "Step 1: Back up the database")


@pytest.mark.parametrize("title, message", [("   ", "needs a title"), ("x" * 501, "limit is 500")])
def test_rename_refuses_bad_titles_and_changes_nothing(version, editor, title, message):
    step = step_named(version, "Step 1")
    with pytest.raises(TemplateEditError, match=message):
        services.rename_step(editor, step.pk, title)
    step.refresh_from_db()
    assert step.title == "Step 1: Backup"


# --- reordering -----------------------------------------------------------------------------------


def test_move_step_within_and_across_phases(version, editor):
    assert step_titles(version) == [["Step 1: Backup", "Step 2: Announce"], ["Step 3: Deploy", "Step 4: Verify"]]
    services.move_step(editor, step_named(version, "Step 2").pk, "up")
    assert step_titles(version) == [["Step 2: Announce", "Step 1: Backup"], ["Step 3: Deploy", "Step 4: Verify"]]
    _, crossed = services.move_step(editor, step_named(version, "Step 1").pk, "down")
    assert crossed
    assert step_titles(version) == [["Step 2: Announce"], ["Step 1: Backup", "Step 3: Deploy", "Step 4: Verify"]]
    _, crossed = services.move_step(editor, step_named(version, "Step 1").pk, "up")
    assert crossed
    assert step_titles(version) == [["Step 2: Announce", "Step 1: Backup"], ["Step 3: Deploy", "Step 4: Verify"]]
    positions = [list(p.steps.order_by("position").values_list("position", flat=True)) for p in version.phases.all()]
    assert positions == [[0, 1], [0, 1]]


def test_move_step_at_the_ends_of_the_runbook_is_refused(version, editor):
    with pytest.raises(TemplateEditError, match="already the first"):
        services.move_step(editor, step_named(version, "Step 1").pk, "up")
    with pytest.raises(TemplateEditError, match="already the last"):
        services.move_step(editor, step_named(version, "Step 4").pk, "down")
    with pytest.raises(TemplateEditError, match="up or down"):
        services.move_step(editor, step_named(version, "Step 2").pk, "sideways")
    assert step_titles(version) == [["Step 1: Backup", "Step 2: Announce"], ["Step 3: Deploy", "Step 4: Verify"]]


def test_move_phase(version, editor):
    during = version.phases.get(title="During")
    services.move_phase(editor, during.pk, "up")
    assert list(version.phases.order_by("position").values_list("title", flat=True)) == ["During", "Before"]
    with pytest.raises(TemplateEditError, match="already the first"):
        services.move_phase(editor, during.pk, "up")


def test_move_item_keeps_children_with_their_parent(version, editor):
    step = step_named(version, "Step 1")
    backup = step.items.get(text="Backup taken")
    services.move_item(editor, backup.pk, "down")
    assert item_order(step) == [
        ("Restore tested", None),
        ("Backup taken", None),
        ("Size checked", "Backup taken"),
        ("Copied offsite", "Backup taken"),
        ("Time Completed", None),
    ]
    services.move_item(editor, step.items.get(text="Copied offsite").pk, "up")
    assert [text for text, parent in item_order(step) if parent] == ["Copied offsite", "Size checked"]
    with pytest.raises(TemplateEditError, match="already the first at its level"):
        services.move_item(editor, step.items.get(text="Copied offsite").pk, "up")
    with pytest.raises(TemplateEditError, match="already the last in this step"):
        services.move_item(editor, step.items.get(text="Time Completed").pk, "down")


def test_a_deployment_made_after_reordering_keeps_the_nesting(version, editor):

    step = step_named(version, "Step 1")
    services.move_item(editor, step.items.get(text="Backup taken").pk, "down")
    deployment = deployment_services.create_deployment(
        version,
        lead=release_manager(editor),
        name="Payments 3.1",
        service="payments",
        version_label="3.1",
        environment="production",
        planned_t0=timezone.now() + timedelta(hours=2),
    )
    copied = deployment.items.get(text="Size checked")
    assert copied.parent.text == "Backup taken"


# --- adding and removing --------------------------------------------------------------------------


def test_add_items_of_every_kind(version, editor):
    step = step_named(version, "Step 2")
    services.add_item(editor, step.pk, kind=ItemKind.CHECK, text="Status page updated")
    services.add_item(editor, step.pk, kind=ItemKind.FIELD, text="Announcement link")
    services.add_item(editor, step.pk, kind=ItemKind.CHOICE, text="Channel", options="Email, Slack , Status page")
    gate = services.add_item(editor, step.pk, kind=ItemKind.GATE, text="")
    assert [(i.kind, i.text, i.options) for i in step.items.order_by("position")][1:] == [
        ("check", "Status page updated", []),
        ("field", "Announcement link", []),
        ("choice", "Channel", ["Email", "Slack", "Status page"]),
        ("gate", "Decision", ["GO", "NO-GO"]),
    ]
    assert gate.options == ["GO", "NO-GO"]
    step.refresh_from_db()
    assert step.is_gate  # a gate item makes a gate step, as an import does


@pytest.mark.parametrize(
    "kind, text, options, message",
    [
        ("check", "   ", "", "needs some text"),
        ("field", "Time completed: ____", "", "without the blank"),
        ("check", "☐ a ☐ b", "", "without boxes"),
        ("choice", "Outcome", "Only one", "at least two options"),
        ("choice", "Outcome", "A, a", "only once"),
        ("choice", "Outcome", "Yes, No (skipped)", "without the part in parentheses"),
        ("choice", "Decision", "GO, NO-GO", "choose the kind “Gate”"),
        ("gate", "Decision", "Yes, No", "GO and NO-GO"),
        ("field", "Owner:", "", "trailing colon"),
        ("banana", "x", "", "Unknown kind"),
    ],
)
def test_add_item_refuses_what_would_not_survive_an_export(version, editor, kind, text, options, message):
    step = step_named(version, "Step 2")
    before = step.items.count()
    with pytest.raises(TemplateEditError, match=message):
        services.add_item(editor, step.pk, kind=kind, text=text, options=options)
    assert step.items.count() == before


def test_remove_item_takes_its_children(version, editor):
    step = step_named(version, "Step 1")
    services.remove_item(editor, step.items.get(text="Backup taken").pk)
    assert item_order(step) == [("Restore tested", None), ("Time Completed", None)]


def test_add_and_remove_steps_and_phases(version, editor):
    before = version.phases.get(title="Before")
    services.add_step(editor, before.pk, "Step 2.5: Freeze merges")
    assert step_titles(version)[0] == ["Step 1: Backup", "Step 2: Announce", "Step 2.5: Freeze merges"]
    services.remove_step(editor, step_named(version, "Step 1").pk)
    assert step_titles(version)[0] == ["Step 2: Announce", "Step 2.5: Freeze merges"]
    assert list(before.steps.order_by("position").values_list("position", flat=True)) == [0, 1]
    assert not TemplateItem.objects.filter(text="Backup taken").exists()
    after = services.add_phase(editor, version.pk, "After")
    assert list(version.phases.order_by("position").values_list("title", flat=True)) == ["Before", "During", "After"]
    services.remove_phase(editor, before.pk)
    services.remove_phase(editor, after.pk)
    with pytest.raises(TemplateEditError, match="at least one phase"):
        services.remove_phase(editor, version.phases.get().pk)


# --- role, timing, gate ---------------------------------------------------------------------------


def test_set_step_role_from_the_version_new_or_none(version, editor):
    step = step_named(version, "Step 3")
    qa = version.roles.get(name="QA Lead")
    services.set_step_role(editor, step.pk, role_id=qa.pk)
    step.refresh_from_db()
    assert step.role == qa
    services.set_step_role(editor, step.pk, new_role="  Release   Manager ")
    services.set_step_role(editor, step_named(version, "Step 4").pk, new_role="release manager")
    assert version.roles.filter(name__iexact="release manager").count() == 1
    assert step_named(version, "Step 4").role.name == "Release Manager"
    services.set_step_role(editor, step.pk)
    step.refresh_from_db()
    assert step.role is None


def test_set_step_role_refuses_a_role_of_another_version(version, editor):
    other = import_runbook(SMALL_RUNBOOK.replace("Payments release", "Other release")).version
    foreign = other.roles.first()
    step = step_named(version, "Step 1")
    with pytest.raises(TemplateEditError, match="does not belong"):
        services.set_step_role(editor, step.pk, role_id=foreign.pk)
    step.refresh_from_db()
    assert step.role.name == "DevOps Engineer"


@pytest.mark.parametrize(
    "offset, duration, expected",
    [
        ("T-1h", "10-15", (-60, 10, 15)),
        ("T+30", "20", (30, 20, 20)),
        ("-90", "1h", (-90, 60, 60)),
        ("T+1h30m", "1-2 hours", (90, 60, 120)),
        ("T-0", "", (0, None, None)),
        ("", "", (None, None, None)),
    ],
)
def test_set_step_timing_reads_what_people_type(version, editor, offset, duration, expected):
    step = services.set_step_timing(editor, step_named(version, "Step 2").pk, offset=offset, duration=duration)
    step.refresh_from_db()
    assert (step.offset_minutes, step.duration_min_minutes, step.duration_max_minutes) == expected


@pytest.mark.parametrize(
    "offset, duration, message",
    [
        ("soon", "", "not an offset"),
        ("T-", "", "not an offset"),
        ("", "15-10", "shortest duration comes first"),
        ("", "forever", "not a duration"),
    ],
)
def test_set_step_timing_refuses_nonsense_and_changes_nothing(version, editor, offset, duration, message):
    step = step_named(version, "Step 1")
    with pytest.raises(TemplateEditError, match=message):
        services.set_step_timing(editor, step.pk, offset=offset, duration=duration)
    step.refresh_from_db()
    assert (step.duration_min_minutes, step.duration_max_minutes) == (10, 15)


@pytest.mark.parametrize("minutes", [-1440, -90, -60, -5, 0, 5, 60, 125, 43200])
def test_offsets_format_and_parse_back(minutes):
    assert services.parse_offset(services.format_offset(minutes)) == minutes


def test_mark_and_unmark_a_gate(version, editor):
    step = step_named(version, "Step 4")
    step, added = services.set_step_gate(editor, step.pk, True)
    assert step.is_gate and added.kind == ItemKind.GATE and added.options == ["GO", "NO-GO"]
    with pytest.raises(TemplateEditError, match="remove that item"):
        services.set_step_gate(editor, step.pk, False)
    services.remove_item(editor, added.pk)
    step, added = services.set_step_gate(editor, step.pk, False)
    assert not step.is_gate and added is None


# --- one edit at a time ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_of_one_step_do_not_collide():
    editor = make_user("editor")
    editor.is_staff = True
    editor.save(update_fields=["is_staff"])
    version = import_runbook(SMALL_RUNBOOK).version
    step = step_named(version, "Step 2")
    errors = []

    def add(n):
        try:
            services.add_item(editor, step.pk, text=f"Parallel {n}")
            services.move_item(editor, step.items.get(text=f"Parallel {n}").pk, "up")
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    positions = list(step.items.values_list("position", flat=True))
    assert len(positions) == len(set(positions)) == 7


# --- views --------------------------------------------------------------------------------------------


def test_pages_need_a_login(version):
    anonymous = Client()
    for url in [
        reverse("checklists:list"),
        reverse("checklists:runbook", args=[version.runbook_id]),
        reverse("checklists:version", args=[version.pk]),
        reverse("checklists:export", args=[version.pk]),
        reverse("checklists:import"),
    ]:
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    response = anonymous.post(reverse("checklists:step_rename", args=[step_named(version, "Step 1").pk]), {"title": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_readers_see_the_structure_without_edit_controls(version, reader):
    client = client_for(reader)
    response = client.get(reverse("checklists:version", args=[version.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Step 1: Backup" in html and "Size checked" in html and "pg_dump payments" in html
    assert "DevOps Engineer" in html and "takes 10–15 min" in html
    assert f'href="/deployments/new/?version={version.pk}"' in html
    assert reverse("checklists:export", args=[version.pk]) in html
    assert "Edit step" not in html and "hx-post" not in html
    assert client.get(reverse("checklists:list")).status_code == 200
    assert client.get(reverse("checklists:runbook", args=[version.runbook_id])).status_code == 200
    assert client.get(reverse("checklists:import")).status_code == 403


def test_editors_see_edit_controls_with_accessible_names(version, editor):
    html = client_for(editor).get(reverse("checklists:version", args=[version.pk])).content.decode()
    step = step_named(version, "Step 1")
    assert "Edit step" in html
    assert f'id="rb-step-{step.pk}-down" class="rb-icon" hx-post=' in html
    assert 'aria-label="Move step “Step 1: Backup” down"' in html
    assert 'hx-confirm="Remove step “Step 1: Backup” with its 5 items?' in html


def _edit_posts(version):
    """(url, valid data) for every editing endpoint."""
    step1, step2 = step_named(version, "Step 1"), step_named(version, "Step 2")
    phase = version.phases.get(title="During")
    item = step1.items.get(text="Restore tested")
    return [
        (reverse("checklists:version_rename", args=[version.pk]), {"title": "Renamed"}),
        (reverse("checklists:phase_add", args=[version.pk]), {"title": "After"}),
        (reverse("checklists:phase_rename", args=[phase.pk]), {"title": "Rollout"}),
        (reverse("checklists:phase_move", args=[phase.pk]), {"direction": "up"}),
        (reverse("checklists:step_add", args=[phase.pk]), {"title": "Step 5"}),
        (reverse("checklists:step_rename", args=[step1.pk]), {"title": "Step 1: Back up"}),
        (reverse("checklists:step_move", args=[step2.pk]), {"direction": "up"}),
        (reverse("checklists:step_role", args=[step1.pk]), {"role": ""}),
        (reverse("checklists:step_timing", args=[step1.pk]), {"offset": "T-1h", "duration": "10"}),
        (reverse("checklists:step_gate", args=[step1.pk]), {"is_gate": "on"}),
        (reverse("checklists:item_add", args=[step1.pk]), {"kind": "check", "text": "Checksum noted"}),
        (reverse("checklists:item_move", args=[item.pk]), {"direction": "up"}),
        (reverse("checklists:item_remove", args=[item.pk]), {}),
        (reverse("checklists:step_remove", args=[step2.pk]), {}),
        (reverse("checklists:phase_remove", args=[phase.pk]), {}),
    ]


@pytest.mark.parametrize("persona, status", [("anonymous", 302), ("reader", 403), ("granted", 200), ("editor", 200)])
def test_permission_matrix_for_every_editing_endpoint(version, editor, granted, reader, persona, status):
    user = {"anonymous": None, "reader": reader, "granted": granted, "editor": editor}[persona]
    client = client_for(user)
    before = export_markdown(version)
    for url, data in _edit_posts(version):
        response = hx_post(client, url, data)
        assert response.status_code == status, (url, response.content[:200])
        if status == 403:
            assert "Only runbook editors" in response.content.decode()
            assert json.loads(response["HX-Trigger"])["warroom:toast"]
        assert client.get(url).status_code in (302, 405)
    if status != 200:
        assert export_markdown(RunbookVersion.objects.get(pk=version.pk)) == before


def test_rename_step_answers_with_the_step_fragment(version, editor):
    step = step_named(version, "Step 1")
    response = hx_post(
        client_for(editor), reverse("checklists:step_rename", args=[step.pk]), {"title": "Step 1: Back up everything"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<article class="rb-step" id="rb-step-{step.pk}"')
    assert "<html" not in html and "Step 1: Back up everything" in html
    assert 'id="rb-status"' in html and "hx-swap-oob" in html  # the status line, out of band
    assert 'id="rb-summary"' in html
    assert f'<details class="rb-edit" id="rb-step-{step.pk}-edit" open>' in html  # the editor stays open
    step.refresh_from_db()
    assert step.title == "Step 1: Back up everything"


def test_move_step_across_phases_retargets_all_phases(version, editor):
    step = step_named(version, "Step 2")
    response = hx_post(client_for(editor), reverse("checklists:step_move", args=[step.pk]), {"direction": "down"})
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#rb-phases"
    assert response.content.decode().lstrip().startswith('<div id="rb-phases">')


def test_new_role_shows_in_the_summary_and_in_step_editors(version, editor):
    client = client_for(editor)
    step = step_named(version, "Step 3")
    response = hx_post(client, reverse("checklists:step_role", args=[step.pk]), {"new_role": "Security Officer"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<span class="role" title="Responsible role">Security Officer</span>' in html
    assert '<li class="role">Security Officer</li>' in html  # the roles panel, out of band
    other = client.get(reverse("checklists:step_editor", args=[step_named(version, "Step 4").pk])).content.decode()
    assert ">Security Officer</option>" in other


def test_step_editor_is_fetched_when_opened(version, editor, reader):
    step = step_named(version, "Step 1")
    url = reverse("checklists:step_editor", args=[step.pk])
    page = client_for(editor).get(reverse("checklists:version", args=[version.pk])).content.decode()
    assert f'hx-get="{url}" hx-trigger="toggle once"' in page
    html = client_for(editor).get(url).content.decode()
    assert f'<label for="rb-step-{step.pk}-title">Step title</label>' in html
    assert f'value="{step.role_id}" selected>DevOps Engineer</option>' in html
    assert 'name="offset" value="" ' in html and 'name="duration" value="10-15"' in html
    assert client_for(reader).get(url).status_code == 403
    assert Client().get(url).status_code == 302
    assert client_for(editor).get(reverse("checklists:step_editor", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("step_move", {"direction": "sideways"}, "malformed"),
        ("step_move", {}, "malformed"),
        ("step_rename", {}, "malformed"),
        ("step_rename", {"title": "  "}, "needs a title"),
        ("step_role", {"role": "abc"}, "malformed"),
        ("step_role", {"role": "999999"}, "does not belong"),
        ("step_timing", {"offset": "whenever", "duration": ""}, "not an offset"),
        ("step_timing", {"offset": "", "duration": "20-10"}, "shortest duration"),
        ("item_add", {"kind": "banana", "text": "x"}, "malformed"),
        ("item_add", {"kind": "choice", "text": "Outcome", "options": "One"}, "at least two options"),
    ],
)
def test_malformed_or_invalid_posts_get_a_400_with_a_message(version, editor, name, data, message):
    step = step_named(version, "Step 1")
    before = export_markdown(version)
    response = hx_post(client_for(editor), reverse(f"checklists:{name}", args=[step.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert message in json.loads(response["HX-Trigger"])["warroom:toast"]
    assert export_markdown(RunbookVersion.objects.get(pk=version.pk)) == before


def test_edits_of_missing_rows_are_404_not_500(version, editor):
    client = client_for(editor)
    assert hx_post(client, reverse("checklists:step_rename", args=[999999]), {"title": "x"}).status_code == 404
    assert hx_post(client, reverse("checklists:item_remove", args=[999999])).status_code == 404
    assert client.get(reverse("checklists:version", args=[999999])).status_code == 404


def test_version_page_says_when_deployments_were_made_from_it(version, editor):

    url = reverse("checklists:version", args=[version.pk])
    assert "deployment was created from this version" not in client_for(editor).get(url).content.decode()
    deployment_services.create_deployment(
        version,
        lead=release_manager(editor),
        name="Payments 3.1",
        service="payments",
        version_label="3.1",
        environment="production",
        planned_t0=timezone.now() + timedelta(hours=2),
    )
    html = client_for(editor).get(url).content.decode()
    assert "1 deployment</strong> was created from this version" in html
    assert "edits here change only deployments created from now on" in html


def test_export_download(version, reader):
    response = client_for(reader).get(reverse("checklists:export", args=[version.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="payments-release-v1.md"')
    assert response.content.decode() == export_markdown(version)


# --- the upload form ------------------------------------------------------------------------------


def test_upload_imports_and_redirects_to_the_version(editor):
    client = client_for(editor)
    page = client.get(reverse("checklists:import")).content.decode()
    assert '<label for="id_file">Runbook file (Markdown)</label>' in page
    assert "at most <strong>5.0\xa0MB</strong>" in page
    data = (SHARED / "smartwallet-checklist.md").read_bytes()
    response = client.post(reverse("checklists:import"), {"file": SimpleUploadedFile("smartwallet.md", data, "text/markdown")})
    version = RunbookVersion.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("checklists:version", args=[version.pk])
    assert version.created_by == editor and version.source_filename == "smartwallet.md"
    followed = client.get(response["Location"]).content.decode()
    assert "Imported smartwallet.md as a new runbook: 13 phases, 38 steps, 206 checklist items" in followed
    again = client.post(reverse("checklists:import"), {"file": SimpleUploadedFile("smartwallet.md", data, "text/markdown")})
    assert again.status_code == 302
    assert Runbook.objects.count() == 1
    assert list(RunbookVersion.objects.order_by("number").values_list("number", flat=True)) == [1, 2]


def test_upload_errors_are_shown_inline_and_store_nothing(editor, settings):
    client = client_for(editor)
    bad = b"# Runbook\n\n## Phase\n\n- [ ] fine\n- [ ] bad \x00 byte\n"
    response = client.post(reverse("checklists:import"), {"file": SimpleUploadedFile("bad.md", bad)})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="rb-file-errors" role="alert"' in html and "Line 6: The file looks binary" in html
    assert 'aria-invalid="true"' in html
    settings.RUNBOOK_MAX_BYTES = 2048
    response = client.post(reverse("checklists:import"), {"file": SimpleUploadedFile("big.md", b"# Big\n\n- [ ] x\n" * 400)})
    assert response.status_code == 400
    assert "the limit is 2.0\xa0KB" in response.content.decode()
    response = client.post(reverse("checklists:import"), {})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not RunbookVersion.objects.exists() and not Runbook.objects.exists()


def test_upload_dry_run_previews_and_stores_nothing(editor):
    data = (SHARED / "expense-accounts-procedure.md").read_bytes()
    response = client_for(editor).post(
        reverse("checklists:import"), {"file": SimpleUploadedFile("expense.md", data), "dry_run": "on"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "“Production Deployment Procedure” can be imported" in html and "2 go/no-go gates" in html
    assert not RunbookVersion.objects.exists()


def test_upload_as_a_new_version_of_a_chosen_runbook(version, editor):
    data = (SHARED / "expense-accounts-procedure.md").read_bytes()
    response = client_for(editor).post(
        reverse("checklists:import"), {"file": SimpleUploadedFile("expense.md", data), "runbook": version.runbook_id}
    )
    assert response.status_code == 302
    assert list(version.runbook.versions.order_by("number").values_list("number", flat=True)) == [1, 2]


def test_upload_is_refused_to_readers(reader):
    response = client_for(reader).post(reverse("checklists:import"), {"file": SimpleUploadedFile("x.md", SMALL_RUNBOOK.encode())})
    assert response.status_code == 403
    assert not RunbookVersion.objects.exists()


def test_runbook_page_lists_versions(version, reader):
    import_runbook(SMALL_RUNBOOK, filename="payments-2.md")
    html = client_for(reader).get(reverse("checklists:runbook", args=[version.runbook_id])).content.decode()
    assert html.index(">v2</a>") < html.index(">v1</a>")
    assert "payments-2.md" in html and "2 phases, 4 steps" in html
    roles = TemplateRole.objects.filter(version=version).count()
    assert roles == 3
    assert TemplatePhase.objects.filter(version__runbook=version.runbook).count() == 4


def test_upload_preview_says_what_was_understood(editor):
    data = (Path(__file__).resolve().parent / "runbooks" / "release-numbered.md").read_bytes()
    response = client_for(editor).post(
        reverse("checklists:import"), {"file": SimpleUploadedFile("release.md", data), "dry_run": "on"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "What was understood" in html
    assert "5 required approvals" in html and "T-minus N" in html and "Day N" in html
    assert "roles merged: QA, QA team → QA Lead" in html
    assert "It would be imported as a new runbook." in html
    assert not RunbookVersion.objects.exists()


# --- the audit log of template edits -------------------------------------------------------------


def test_each_edit_leaves_a_record(version, editor):
    step = step_named(version, "Step 1")
    services.rename_step(editor, step.pk, "Step 1: Back up the database")
    services.set_step_timing(editor, step.pk, offset="T-1h", duration="10-15")
    services.add_item(editor, step.pk, text="Checksum compared")
    services.move_phase(editor, version.phases.get(title="During").pk, "up")
    edits = list(RunbookEdit.objects.filter(version=version).order_by("id"))
    assert [e.action for e in edits] == ["step.rename", "step.timing", "item.add", "phase.move"]
    rename = edits[0]
    assert rename.actor == editor and rename.actor_label == (editor.get_full_name() or editor.get_username())
    assert rename.runbook_id == version.runbook_id and rename.version_number == version.number
    assert rename.before == {"title": "Step 1: Backup"} and rename.after == {"title": "Step 1: Back up the database"}
    assert rename.summary == "Renamed step “Step 1: Backup” → “Step 1: Back up the database”"
    assert edits[1].after["start"] == "T-1h" and "start none → T-1h" in edits[1].summary
    assert "“Checksum compared”" in edits[2].summary


def test_a_refused_edit_leaves_no_record(version, editor):
    with pytest.raises(TemplateEditError):
        services.rename_step(editor, step_named(version, "Step 1").pk, "   ")
    assert not RunbookEdit.objects.exists()


def test_the_edit_shows_on_the_runbook_page(version, editor):
    step = step_named(version, "Step 2")
    response = hx_post(client_for(editor), reverse("checklists:step_remove", args=[step.pk]))
    assert response.status_code == 200
    page = client_for(editor).get(reverse("checklists:runbook", args=[version.runbook_id])).content.decode()
    assert "Template edits" in page
    assert "Removed step “Step 2: Announce” with 1 item from phase “Before”" in page


@pytest.mark.parametrize("statement", ["UPDATE checklists_runbookedit SET summary = 'x'", "DELETE FROM checklists_runbookedit"])
def test_the_log_is_append_only_in_postgres(version, editor, statement):
    services.rename_version(editor, version.pk, "Renamed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
