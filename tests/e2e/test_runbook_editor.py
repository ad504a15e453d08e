"""The runbook editor in a real browser: upload a runbook, rename a step, reorder, remove, all without a reload."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from checklists.models import RunbookVersion, TemplateStep
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)

EXPENSE = Path(__file__).resolve().parents[2] / "checklists" / "demo" / "expense-accounts-procedure.md"


@pytest.fixture
def editor(db):
    user = make_user("editor")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def step_headings(phase):
    return phase.locator("article.rb-step h3")


def test_upload_rename_and_reorder_without_a_reload(editor, login):
    page = login("editor")
    page.goto("/runbooks/")
    page.get_by_role("link", name="Import a runbook").click()
    expect(page.get_by_text("at most 5.0")).to_be_visible()
    page.get_by_label("Runbook file (Markdown)").set_input_files(str(EXPENSE))
    page.get_by_role("button", name="Import").click()
    # The review comes first (ticked by default): what was understood, each finding with a box.
    expect(page.get_by_role("heading", name="Accept or correct it")).to_be_visible()
    assert not RunbookVersion.objects.exists()
    page.get_by_role("button", name="Import with these choices").click()
    page.wait_for_url("**/runbooks/versions/*/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Production Deployment Procedure")
    expect(page.locator(".messages")).to_contain_text("38 steps")
    version = RunbookVersion.objects.get()
    assert page.url.endswith(f"/runbooks/versions/{version.pk}/")
    # Anything below must happen in this document: a reload would drop the marker.
    page.evaluate("window.rbNoReload = true")

    # Rename a step through its editor.
    step = page.locator("article.rb-step", has=page.get_by_role("heading", name="Step 1.2: Final Staging Verification"))
    step.get_by_text("Edit step").click()
    step.get_by_label("Step title").fill("Step 1.2: Final staging check")
    step.get_by_role("button", name="Rename").click()
    renamed = page.get_by_role("heading", name="Step 1.2: Final staging check", exact=True)
    expect(renamed).to_be_visible()
    expect(page.locator("#rb-status")).to_have_text("Step renamed to “Step 1.2: Final staging check”.")

    # Reorder with the keyboard: focus "Move up" and press Enter; focus stays on the moved step's button.
    phase = page.locator("section.rb-phase", has=renamed)
    expect(step_headings(phase).nth(0)).to_have_text("Step 1.1: Create Database Backup")
    move_up = page.get_by_role("button", name="Move step “Step 1.2: Final staging check” up")
    move_up.focus()
    page.keyboard.press("Enter")
    expect(step_headings(phase).nth(0)).to_have_text("Step 1.2: Final staging check")
    expect(step_headings(phase).nth(1)).to_have_text("Step 1.1: Create Database Backup")
    expect(page.get_by_role("button", name="Move step “Step 1.2: Final staging check” up")).to_be_focused()
    # The step's editor was open before the move and is open (and loaded) after it.
    moved = page.locator("article.rb-step", has=page.get_by_role("heading", name="Step 1.2: Final staging check"))
    expect(moved.get_by_label("Step title")).to_have_value("Step 1.2: Final staging check")

    # Remove an item, confirming the dialog.
    backup = page.locator("article.rb-step", has=page.get_by_role("heading", name="Step 1.1: Create Database Backup"))
    expect(backup.get_by_text("Backup compressed successfully")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    backup.get_by_role("button", name="Remove item “Backup compressed successfully”").click()
    expect(backup.get_by_text("Backup compressed successfully")).to_have_count(0)

    # Give a step a planned start.
    backup.get_by_text("Edit step").click()
    backup.get_by_label("Planned start").fill("T-90")
    backup.get_by_role("button", name="Save timing").click()
    expect(backup.locator(".step-meta")).to_contain_text("starts T-1h30m")

    assert page.evaluate("window.rbNoReload") is True
    moved = TemplateStep.objects.get(phase__version=version, title="Step 1.2: Final staging check")
    titles = list(moved.phase.steps.order_by("position").values_list("title", flat=True))
    assert titles[:2] == ["Step 1.2: Final staging check", "Step 1.1: Create Database Backup"]

    # And it is all still there after a reload.
    page.reload()
    phase = page.locator("section.rb-phase", has=page.get_by_role("heading", name="Step 1.2: Final staging check"))
    expect(step_headings(phase).nth(0)).to_have_text("Step 1.2: Final staging check")


def test_a_bad_upload_shows_the_error_next_to_the_field(editor, login, tmp_path):
    bad = tmp_path / "notes.md"
    bad.write_text("Only prose here, nothing to tick.\n")
    page = login("editor")
    page.goto("/runbooks/import/")
    page.get_by_label("Runbook file (Markdown)").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#rb-file-errors")).to_contain_text("No checklist content found")
    expect(page.get_by_label("Runbook file (Markdown)")).to_have_attribute("aria-invalid", "true")
    assert not RunbookVersion.objects.exists()
