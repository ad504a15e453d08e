"""Importing a runbook stores exactly what the parser read, in one transaction, as a new version.

Runs against the real PostgreSQL test database; the runbooks are the two shared
ones and their copies in checklists/demo.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.db.utils import DatabaseError
from django.utils import timezone

from checklists import services
from checklists.importing import RunbookImportError, export_markdown, import_runbook
from checklists.models import (
    ItemKind,
    Runbook,
    RunbookVersion,
    TemplateCodeBlock,
    TemplateItem,
    TemplatePhase,
    TemplateRole,
    TemplateStep,
    TemplateTimelineEntry,
)
from checklists.parsing import iter_items, parse_runbook
from checklists.rendering import render_markdown
from checklists.review import is_placeholder, role_names
from deployments import services as deployment_services
from tests.factories import make_user

BASE_DIR = Path(__file__).resolve().parents[2]
SHARED = BASE_DIR / "checklists" / "demo"  # the shared runbooks, kept in the repo
DEMO = BASE_DIR / "checklists" / "demo"
PATHS = sorted(SHARED.glob("*.md")) + sorted(DEMO.glob("*.md"))

RUNBOOKS = [pytest.param(path, id=f"{path.parent.name}/{path.name}") for path in PATHS]
TEMPLATE_MODELS = [
    Runbook,
    RunbookVersion,
    TemplatePhase,
    TemplateStep,
    TemplateItem,
    TemplateCodeBlock,
    TemplateRole,
    TemplateTimelineEntry,
]

pytestmark = pytest.mark.django_db


def stored_counts(version: RunbookVersion) -> dict:
    """The same summary as ParsedRunbook.counts(), computed from the stored rows."""
    items = TemplateItem.objects.filter(step__phase__version=version)
    return {
        "title": version.title,
        "phases": version.phases.count(),
        "steps": TemplateStep.objects.filter(phase__version=version).count(),
        "items": items.filter(kind=ItemKind.CHECK).count(),
        "checked_items": items.filter(kind=ItemKind.CHECK, initially_checked=True).count(),
        "fields": items.filter(kind=ItemKind.FIELD).count(),
        "choices": items.filter(kind=ItemKind.CHOICE).count(),
        "gates": items.filter(kind=ItemKind.GATE).count(),
        "timeline_entries": version.timeline.count(),
        "roles": list(version.roles.order_by("position").values_list("name", flat=True)),
    }


def catalogue(parsed) -> list[str]:
    """The role catalogue a version stores: the parser's roles and the recognised ones, each under
    the name its merge gives it ("QA team" and "QA" are stored as "QA Lead"), placeholders left out."""
    merged = role_names(parsed.found)
    names: list[str] = []
    approvers = [entry["role"] for entry in parsed.found["approvals"] if entry.get("role")]
    for written in [*parsed.roles, *(role["name"] for role in parsed.found["roles"]), *approvers]:
        name = merged.get(written.strip().casefold(), written.strip())
        if name.casefold() not in {n.casefold() for n in names} and not is_placeholder(name):
            names.append(name)
    return names


def stored_tree(step: TemplateStep) -> list:
    """The step's checkboxes as nested (text, checked, number, children) tuples."""
    items = list(step.items.filter(kind=ItemKind.CHECK).order_by("position", "id"))
    children: dict[int | None, list[TemplateItem]] = {}
    for item in items:
        children.setdefault(item.parent_id, []).append(item)

    def tree(item):
        return (item.text, item.initially_checked, item.number or None, [tree(c) for c in children.get(item.pk, [])])

    return [tree(item) for item in children.get(None, [])]


def parsed_tree(items) -> list:
    return [(i.text, i.checked, i.number, parsed_tree(i.children)) for i in items]


def structure(version: RunbookVersion) -> dict:
    """What a round trip must keep: titles, items, labels, options, code, roles, timeline."""
    steps = list(
        TemplateStep.objects.filter(phase__version=version).select_related("role").order_by("phase__position", "position")
    )

    def kind(step, k, attribute):
        return [getattr(i, attribute) for i in step.items.filter(kind=k).order_by("position", "id")]

    return {
        "counts": stored_counts(version),
        "phases": list(version.phases.values_list("title", flat=True)),
        "steps": [
            {
                "title": s.title,
                "role": s.role.name if s.role else None,
                "duration": (s.duration_min_minutes, s.duration_max_minutes),
                "offset": s.offset_minutes,
                "is_gate": s.is_gate,
                "items": stored_tree(s),
                "fields": kind(s, ItemKind.FIELD, "text"),
                "choices": list(zip(kind(s, ItemKind.CHOICE, "text"), kind(s, ItemKind.CHOICE, "options"), strict=True)),
                "gates": list(zip(kind(s, ItemKind.GATE, "text"), kind(s, ItemKind.GATE, "options"), strict=True)),
                "code": list(s.code_blocks.values_list("info", "code")),
            }
            for s in steps
        ],
        "timeline": list(version.timeline.values_list("label", "offset_minutes", "activity", "role__name")),
    }


def no_template_rows() -> dict:
    return {model.__name__: model.objects.count() for model in TEMPLATE_MODELS}


# --- what is stored ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", RUNBOOKS)
def test_stored_counts_equal_the_parse(path):
    data = path.read_bytes()
    outcome = import_runbook(data, filename=path.name)
    parsed = parse_runbook(data)
    assert stored_counts(outcome.version) == {**parsed.counts(), "roles": catalogue(parsed)}
    assert outcome.version.source_filename == path.name
    assert len(outcome.version.source_sha256) == 64


@pytest.mark.parametrize("path", RUNBOOKS)
def test_every_step_keeps_its_item_tree_role_timing_and_code(path):
    parsed = parse_runbook(path.read_bytes())
    version = import_runbook(path.read_bytes()).version
    stored = list(
        TemplateStep.objects.filter(phase__version=version).select_related("role").order_by("phase__position", "position")
    )
    assert [s.title for s in stored] == [s.title for s in parsed.steps()]
    for step, parsed_step in zip(stored, parsed.steps(), strict=True):
        assert stored_tree(step) == parsed_tree(parsed_step.items), step.title
        assert (step.role.name if step.role else None) == parsed_step.role
        assert step.offset_minutes == parsed_step.offset_minutes
        assert (step.duration_min_minutes, step.duration_max_minutes) == (
            parsed_step.duration_min_minutes,
            parsed_step.duration_max_minutes,
        )
        assert list(step.code_blocks.values_list("info", "code")) == [(c.info, c.code) for c in parsed_step.code_blocks]
        assert step.is_gate == bool(parsed_step.gates)


def test_nested_items_are_stored_as_a_tree():
    version = import_runbook((SHARED / "smartwallet-checklist.md").read_bytes()).version
    step = TemplateStep.objects.get(phase__version=version, title="Phase 4: Traffic Migration")
    monitor = step.items.filter(text="Monitor for 10 minutes", parent=None).order_by("position").first()
    assert list(monitor.children.order_by("position").values_list("text", flat=True)) == [
        "Error rate < 0.1%",
        "Response time < 500ms",
        "No critical errors",
    ]
    # Parents come before their children in position order (the deployment snapshot relies on it).
    for item in TemplateItem.objects.filter(step__phase__version=version, parent__isnull=False).select_related("parent"):
        assert item.parent.position < item.position


def test_roles_are_linked_to_steps_and_timeline():
    version = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()).version
    backup = TemplateStep.objects.select_related("role").get(phase__version=version, title="Step 1.1: Create Database Backup")
    assert backup.role.name == "DevOps Engineer"
    assert backup.role.version_id == version.pk
    assert backup.offset_minutes == -60  # "| T-1h | Database backup | 30 min | DevOps |"
    staging = TemplateStep.objects.select_related("role").get(
        phase__version=version, title="Step 1.2: Final Staging Verification"
    )
    assert staging.role.name == "QA Lead"
    # One role row per role: "QA Team" in the timeline, "QA team" and "QA" above are the QA Lead (the
    # merge the import shows), and the timeline's QA rows name that one role.
    assert not version.roles.filter(name__iexact="qa team").exists()
    assert version.roles.filter(name__istartswith="qa").count() == 1
    assert {e.role.name for e in version.timeline.select_related("role") if e.role and "QA" in e.role.name} == {"QA Lead"}
    assert TemplateRole.objects.filter(version=version).count() == len(
        catalogue(parse_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()))
    )


def test_timeline_entries_are_stored_in_order():
    data = (SHARED / "expense-accounts-procedure.md").read_bytes()
    version = import_runbook(data).version
    entries = list(version.timeline.select_related("role"))
    parsed = parse_runbook(data).timeline
    assert [(e.label, e.offset_minutes, e.activity) for e in entries] == [(t.label, t.offset_minutes, t.activity) for t in parsed]
    first = entries[0]
    assert (first.label, first.offset_minutes, first.role.name) == ("T-24h", -1440, "Product Owner")
    assert (first.duration_min_minutes, first.duration_max_minutes) == (None, None)
    backup = next(e for e in entries if e.label == "T-1h")
    assert (backup.duration_min_minutes, backup.duration_max_minutes) == (30, 30)


def test_code_blocks_are_stored_verbatim():
    data = (SHARED / "expense-accounts-procedure.md").read_bytes()
    version = import_runbook(data).version
    block = TemplateCodeBlock.objects.get(step__phase__version=version, step__title="Step 1.1: Create Database Backup")
    assert block.info == "bash"
    assert "pg_dump -U postgres \\\n  -h localhost \\\n  -d production_database \\\n" in block.code
    assert block.code in data.decode()
    parsed_code = [c.code for s in parse_runbook(data).steps() for c in s.code_blocks]
    stored_code = list(
        TemplateCodeBlock.objects.filter(step__phase__version=version)
        .order_by("step__phase__position", "step__position", "position")
        .values_list("code", flat=True)
    )
    assert stored_code == parsed_code


def test_kinds_of_items_keep_labels_and_options():
    version = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()).version
    decision = TemplateItem.objects.get(step__phase__version=version, step__title__startswith="Step 1.3", kind=ItemKind.GATE)
    assert (decision.text, decision.options) == ("Decision", ["GO", "NO-GO"])
    assert decision.step.is_gate
    status = TemplateItem.objects.filter(step__phase__version=version, kind=ItemKind.CHOICE, text="Migration Status").first()
    assert status.options == ["Success", "Failed"]
    assert TemplateItem.objects.filter(step__phase__version=version, kind=ItemKind.FIELD, text="Time Completed").count() >= 5


# --- nothing half-written ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"# Title\n\n\x00\x01binary", "binary"),
        (b"Just prose, no checklist at all.\n", "No checklist content"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(data, message):
    with pytest.raises(RunbookImportError, match=message):
        import_runbook(data, filename="bad.md")
    assert set(no_template_rows().values()) == {0}


def test_the_error_names_the_line():
    data = b"# Runbook\n\n## Phase\n\n- [ ] fine\n- [ ] bad \x00 byte\n"
    with pytest.raises(RunbookImportError) as caught:
        import_runbook(data)
    assert caught.value.line == 6
    assert str(caught.value).startswith("Line 6:")


def test_a_failure_while_storing_leaves_no_partial_template():
    """The database refuses the last rows an import writes (timeline entries): nothing of it stays.

    A real PostgreSQL trigger makes the failure, inside this test's transaction.
    """
    data = (SHARED / "expense-accounts-procedure.md").read_bytes()
    first = import_runbook(data).version  # an existing version, which must survive untouched
    before = no_template_rows()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_timeline() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'timeline refused by test trigger'; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_timeline BEFORE INSERT ON checklists_templatetimelineentry
            FOR EACH ROW EXECUTE FUNCTION refuse_timeline();
            """
        )
    with pytest.raises(DatabaseError, match="timeline refused"):
        import_runbook(data)
    assert no_template_rows() == before
    assert list(Runbook.objects.get().versions.values_list("number", flat=True)) == [first.number]
    with pytest.raises(DatabaseError):
        import_runbook(b"# Fresh runbook\n\n## P\n\n| Time | Activity |\n|---|---|\n| T-0 | Go |\n\n### S\n\n- [ ] x\n")
    assert no_template_rows() == before
    assert not Runbook.objects.filter(name="Fresh runbook").exists()


def test_dry_run_stores_nothing():
    outcome = import_runbook((SHARED / "smartwallet-checklist.md").read_bytes(), dry_run=True)
    assert outcome.version is None
    assert outcome.summary()["steps"] == 38
    assert set(no_template_rows().values()) == {0}


# --- versions ------------------------------------------------------------------------------------


def test_importing_the_same_file_twice_makes_a_second_version_not_a_second_runbook():
    data = (SHARED / "smartwallet-checklist.md").read_bytes()
    first = import_runbook(data, filename="smartwallet-checklist.md")
    second = import_runbook(data, filename="smartwallet-checklist.md")
    assert first.created_runbook and not second.created_runbook
    assert Runbook.objects.count() == 1
    assert second.version.runbook_id == first.version.runbook_id
    assert (first.version.number, second.version.number) == (1, 2)
    assert first.version.source_sha256 == second.version.source_sha256
    assert stored_counts(first.version) == stored_counts(second.version)


def test_a_different_title_is_a_different_runbook_unless_the_runbook_is_named():
    smartwallet = import_runbook((SHARED / "smartwallet-checklist.md").read_bytes()).version
    expense = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()).version
    assert smartwallet.runbook_id != expense.runbook_id
    third = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes(), runbook=smartwallet.runbook).version
    assert (third.runbook_id, third.number) == (smartwallet.runbook_id, 2)


def test_a_deployment_keeps_the_version_it_was_created_from():
    lead = make_user("lead")
    data = (SHARED / "smartwallet-checklist.md").read_bytes()
    v1 = import_runbook(data).version
    deployment = deployment_services.create_deployment(
        v1,
        lead=lead,
        name="SmartWallet 2.0",
        service="smartwallet",
        version_label="2.0.0",
        environment="production",
        planned_t0=timezone.now() + timedelta(days=1),
    )
    items_before = deployment.items.count()
    titles_before = list(deployment.steps.order_by("phase__position", "position").values_list("title", flat=True))
    changed = data.replace(
        b"- [ ] Linting passes with no errors\n", b"- [ ] Linting passes with no errors\n- [ ] Licences checked\n"
    )
    v2 = import_runbook(changed).version
    assert (v2.runbook_id, v2.number) == (v1.runbook_id, 2)
    assert stored_counts(v2)["items"] == stored_counts(v1)["items"] + 1
    # Editing v1 itself does not reach the deployment either: it holds a snapshot.
    step = TemplateStep.objects.filter(phase__version=v1).order_by("phase__position", "position").first()
    services.rename_step(_staff(), step.pk, "Renamed after the deployment was made")
    deployment.refresh_from_db()
    assert deployment.runbook_version_id == v1.pk
    assert deployment.items.count() == items_before
    assert list(deployment.steps.order_by("phase__position", "position").values_list("title", flat=True)) == titles_before


def _staff():
    user = make_user("editor")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


# --- Markdown round trip through the database -------------------------------------------------------


@pytest.mark.parametrize("path", RUNBOOKS)
def test_import_export_import_keeps_counts_and_texts(path):
    first = import_runbook(path.read_bytes(), filename=path.name).version
    markdown = export_markdown(first)
    second = import_runbook(markdown.encode(), filename=path.name).version
    assert second.runbook_id == first.runbook_id  # the export keeps the title, so it is the next version
    assert structure(second) == structure(first)
    assert export_markdown(second) == markdown


@pytest.mark.parametrize("path", RUNBOOKS)
def test_export_writes_back_what_the_parser_read(path):
    """Exporting a stored version gives the very Markdown the renderer makes of the parse: nothing lost on the way."""
    data = path.read_bytes()
    assert export_markdown(import_runbook(data).version) == render_markdown(parse_runbook(data))


def test_markdown_layout_is_stored():
    """Sections, item groups, fill-ins on a checkbox line, hints and option notes: what the export needs."""
    expense = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()).version
    backup = TemplateStep.objects.get(phase__version=expense, title="Step 1.1: Create Database Backup")
    assert backup.section == "Phase 1: Pre-Deployment (T-1h to T-0)"
    ui = TemplateStep.objects.get(phase__version=expense, title="Step 3.2: UI Verification")
    assert ui.items.get(text="Navigate to `/expense-accounts`").group == "**Account List Page**"
    decision = TemplateItem.objects.get(step__phase__version=expense, step__title__startswith="Step 1.3", kind=ItemKind.GATE)
    assert decision.option_notes == ["", "(postpone)"]
    assert TemplateItem.objects.filter(step__phase__version=expense, kind=ItemKind.FIELD, hint="(date/time)").exists()
    # Code blocks are numbered in the same sequence as the items, in reading order.
    rows = [(i.position, "item") for i in backup.items.all()] + [(c.position, "code") for c in backup.code_blocks.all()]
    assert [kind for _position, kind in sorted(rows)][:2] == ["code", "item"]

    smartwallet = import_runbook((SHARED / "smartwallet-checklist.md").read_bytes()).version
    sign_off = TemplateStep.objects.get(phase__version=smartwallet, title="Pre-Deployment Approval")
    rows = list(sign_off.items.order_by("position").values_list("kind", "text", "on_item")[:3])
    assert rows == [
        ("check", "Engineering Manager: _________________ Date: _______", False),
        ("field", "Engineering Manager", True),
        ("field", "Engineering Manager — Date", True),
    ]
    rollback = TemplateStep.objects.get(phase__version=smartwallet, title="Rollback Procedure")
    assert rollback.implicit


def test_export_of_an_edited_version_imports_back_with_the_edits():
    version = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()).version
    editor = _staff()
    step = TemplateStep.objects.filter(phase__version=version).order_by("phase__position", "position").first()
    services.rename_step(editor, step.pk, "Code quality gate")
    services.add_item(editor, step.pk, kind=ItemKind.FIELD, text="Reviewer")
    services.add_item(editor, step.pk, kind=ItemKind.CHOICE, text="Coverage", options="Above 80%, Below 80%")
    services.set_step_gate(editor, step.pk, True)
    services.set_step_role(editor, step.pk, new_role="Release Manager")
    services.set_step_timing(editor, step.pk, duration="10-20")
    services.move_item(editor, step.items.filter(kind=ItemKind.CHECK).order_by("position").first().pk, "down")
    again = import_runbook(export_markdown(version).encode()).version
    assert structure(again)["steps"] == structure(version)["steps"]
    copied = TemplateStep.objects.filter(phase__version=again).order_by("phase__position", "position").first()
    assert copied.title == "Code quality gate"
    assert (copied.duration_min_minutes, copied.duration_max_minutes) == (10, 20)
    assert copied.role.name == "Release Manager"
    assert copied.is_gate


def test_a_planned_start_set_in_the_editor_survives_export_and_import():
    """The offset is written on the step itself, so it comes back even where no timeline entry names the step."""
    version = import_runbook((SHARED / "expense-accounts-procedure.md").read_bytes()).version
    editor = _staff()
    # Step 1.1 is in the timeline at T-1h: the planned start set in the editor wins over it.
    backup = TemplateStep.objects.get(phase__version=version, title="Step 1.1: Create Database Backup")
    services.set_step_timing(editor, backup.pk, offset="T-1h35m", duration="10-15")
    # A new step matches no timeline entry at all.
    added = services.add_step(editor, backup.phase_id, "Warm the caches")
    services.add_item(editor, added.pk, kind=ItemKind.CHECK, text="Caches warm")
    services.set_step_timing(editor, added.pk, offset="T+95", duration="5")
    backup.refresh_from_db()
    added.refresh_from_db()
    assert (backup.offset_minutes, added.offset_minutes) == (-95, 95)

    markdown = export_markdown(version)
    assert "**Planned start:** T-1h35m" in markdown and "**Planned start:** T+1h35m" in markdown
    again = import_runbook(markdown.encode()).version
    assert again.pk != version.pk
    copies = TemplateStep.objects.filter(phase__version=again)
    copied_backup = copies.get(title="Step 1.1: Create Database Backup")
    copied_added = copies.get(title="Warm the caches")
    timing = ("offset_minutes", "duration_min_minutes", "duration_max_minutes")
    assert tuple(getattr(copied_backup, name) for name in timing) == (-95, 10, 15)
    assert tuple(getattr(copied_added, name) for name in timing) == (95, 5, 5)
    assert structure(again)["steps"] == structure(version)["steps"]
    assert export_markdown(again) == markdown


def test_every_item_is_counted_once_in_the_parse():
    """Guards the helper above: counts() counts nested items, as the stored rows do."""
    parsed = parse_runbook((SHARED / "smartwallet-checklist.md").read_bytes())
    assert parsed.counts()["items"] == sum(1 for s in parsed.steps() for _ in iter_items(s.items))
