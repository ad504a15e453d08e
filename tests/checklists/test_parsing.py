"""Tests for checklists.parsing: the two real runbooks, messy input, and every error.

Expected numbers for the real runbooks were worked out without the parser (the
commands are in the comments), so a parser change that alters them is caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.synthetic import make_synthetic_runbook
from checklists.parsing import (
    ParsedRunbook,
    RunbookImportError,
    iter_items,
    parse_runbook,
)

RUNBOOKS = Path(__file__).resolve().parents[2] / "checklists" / "demo"


def load(name: str) -> ParsedRunbook:
    return parse_runbook((RUNBOOKS / name).read_bytes())


def all_items(runbook: ParsedRunbook):
    return [item for step in runbook.steps() for item in iter_items(step.items)]


def step_named(runbook: ParsedRunbook, title: str):
    return next(step for step in runbook.steps() if step.title == title)


def import_error(data, **kwargs) -> RunbookImportError:
    with pytest.raises(RunbookImportError) as caught:
        parse_runbook(data, **kwargs)
    return caught.value


# --- the shared runbooks -----------------------------------------------------------------
#
# Counted on the file with code fences removed:
#   awk '/^[ \t]*(```|~~~)/{f=!f; next} !f' FILE > /tmp/nofence.md
# phases  grep -c '^## ' /tmp/nofence.md   (the only '# ' line is the title)
# steps   grep -cE '^#{3,6} ' minus "sections" (an H3+ heading followed, past blank lines and
#         '---', by a deeper heading; awk in the session notes) plus phases whose text before
#         their first H3 holds a box or blank (implicit steps)
# items   grep -cE '^[ \t]*([-*+]|[0-9]+[.)])[ \t]+\[[ xX]\]([ \t]|$)'  (checked: \[[xX]\])
# fields  grep -oP '(?<!\w)_{3,}(?!\w)' | wc -l
# choices / gates: grep -nE '☐|\[ \].*\[ \]' and reading each line (GO/NO-GO, GO-LIVE/ROLLBACK = gate)
# timeline: smartwallet grep -cE '^- \*\*[0-9]{1,2}:[0-9]{2} [AP]M\*\*:'; expense grep -cE '^\| T[-+]'
# roles: sign-off lines grep -E ': _+ Date'; approvals, "Attendees:", the timeline's Responsible
#        column and "**Responsible:**" lines in document order, de-duplicated by hand, without
#        "All", "-" and "All deployment team members".


def test_smartwallet_counts():
    # 13 '## ' lines; 36 '### ' and no sections; + implicit steps in "Rollback Procedure" and
    # "Success Criteria"; 206 boxes, none ticked; 13 blanks (5 sign-off lines x 2 + 3 status
    # lines); one choice ("Status: [ ] Success [ ] Partial [ ] Rolled Back"); 9 timeline bullets.
    assert load("smartwallet-checklist.md").counts() == {
        "title": "Production Deployment Checklist",
        "phases": 13,
        "steps": 38,
        "items": 206,
        "checked_items": 0,
        "fields": 13,
        "choices": 1,
        "gates": 0,
        "timeline_entries": 9,
        "roles": ["Engineering Manager", "DevOps Lead", "QA Lead", "Deployment Lead"],
    }


def test_expense_counts():
    # 12 '## ' lines (the subtitle "Multi-Expense…" is one); 42 H3/H4 headings minus 5 sections
    # ("### Phase 1..4", "### Rollback Steps") plus the implicit "Sign-Off" step; 107 boxes, 5
    # ticked (Required Documents); 55 blanks; choices on lines 161, 172, 381, 608, 621; gates on
    # 128 (GO/NO-GO) and 365 (GO-LIVE/ROLLBACK); 14 rows in the timeline table.
    assert load("expense-accounts-procedure.md").counts() == {
        "title": "Production Deployment Procedure",
        "phases": 12,
        "steps": 38,
        "items": 107,
        "checked_items": 5,
        "fields": 55,
        "choices": 5,
        "gates": 2,
        "timeline_entries": 14,
        "roles": [
            "Product Owner",  # Required Approvals: "Product Owner approval"
            "Security team",
            "QA team",  # "QA team sign-off"; the timeline's "QA Team" is the same role
            "DevOps team",  # "DevOps team readiness confirmation"
            "Lead Developer",  # Attendees
            "QA Lead",
            "DevOps Engineer",
            "DevOps",  # timeline Responsible column
            "QA",
        ],
    }


def test_expense_steps_sections_roles_and_durations():
    runbook = load("expense-accounts-procedure.md")
    backup = step_named(runbook, "Step 1.1: Create Database Backup")
    assert backup.number == "1.1"
    assert backup.section == "Phase 1: Pre-Deployment (T-1h to T-0)"
    assert backup.role == "DevOps Engineer"
    # No estimate of its own: the timeline row "T-1h | Database backup | 30 min" gives offset and duration.
    assert (backup.offset_minutes, backup.duration_min_minutes, backup.duration_max_minutes) == (-60, 30, 30)
    assert backup.code_blocks[0].info == "bash"
    assert backup.code_blocks[0].code.startswith("# Connect to production database server\nssh production-db-server\n")
    assert [f.label for f in backup.fields] == ["Backup location documented"]
    assert "**Rollback Point:**" in backup.description  # the words before the field's label are kept

    assert step_named(runbook, "Step R1: Decision to Rollback").number == "R1"
    assert step_named(runbook, "Step R1: Decision to Rollback").section == "Rollback Steps"
    meeting = step_named(runbook, "Step 1.3: Team Assembly & Go/No-Go Decision")
    assert meeting.role == "Product Owner"
    assert "**Responsible:** Product Owner (meeting facilitator)" in meeting.description
    window = step_named(runbook, "Recommended Deployment Window")
    assert (window.duration_min_minutes, window.duration_max_minutes) == (120, 180)  # "2-3 hours"
    assert step_named(runbook, "Step 2.2: Apply Database Migrations").offset_minutes == 5
    assert step_named(runbook, "Review Meeting").offset_minutes == 240  # "T+4h | Post-deployment review meeting"


def test_expense_fields_choices_and_gates():
    runbook = load("expense-accounts-procedure.md")
    go = step_named(runbook, "Step 1.3: Team Assembly & Go/No-Go Decision")
    assert [(g.label, g.options, g.notes) for g in go.gates] == [("Decision", ["GO", "NO-GO"], ["", "(postpone)"])]
    assert [f.label for f in go.fields] == ["If NO-GO, document reason"]
    live = step_named(runbook, "Step 4.1: Final Go/No-Go Decision")
    assert [(g.label, g.options) for g in live.gates] == [("Decision", ["GO-LIVE", "ROLLBACK"])]
    assert [f.label for f in live.fields] == ["Approved By", "Time"]
    migrations = step_named(runbook, "Step 2.2: Apply Database Migrations")
    assert [(c.label, c.options) for c in migrations.choices] == [("Migration Status", ["Success", "Failed"])] * 2
    assert [f.label for f in migrations.fields] == ["Error", "Time Completed", "Time Completed"]
    assert "If failed, stop deployment and begin rollback." in migrations.description
    notify = step_named(runbook, "Step 4.2: Send Go-Live Notification")
    assert [(c.label, c.options) for c in notify.choices] == [("Notification Sent", ["Yes"])]
    assert [f.label for f in notify.fields] == ["Notification Sent — Time"]
    sign_off = step_named(runbook, "Sign-Off")
    assert sign_off.implicit
    assert [f.label for f in sign_off.fields] == [
        "Deployment Start Time", "Deployment End Time", "Total Duration",
        "Product Owner", "Product Owner — Date", "Lead Developer", "Lead Developer — Date",
        "QA Lead", "QA Lead — Date", "DevOps Engineer", "DevOps Engineer — Date",
        "Next Steps 1", "Next Steps 2", "Next Steps 3",
    ]  # fmt: skip
    assert [c.options for c in sign_off.choices] == [["Yes", "No"], ["Success", "Success with minor issues", "Rolled back"]]
    channels = step_named(runbook, "Communication Channels")
    assert [(f.label, f.hint) for f in channels.fields] == [
        ("Platform", "(Slack, Teams, etc.)"),
        ("Video call", "(Zoom, Meet link)"),
    ]


def test_expense_groups_nested_code_and_descriptions():
    runbook = load("expense-accounts-procedure.md")
    ui = step_named(runbook, "Step 3.2: UI Verification")
    assert [i.group for i in ui.items[:2]] == ["**Account List Page**"] * 2
    assert ui.items[0].text == "Navigate to `/expense-accounts`"
    assert ui.items[-1].group is None and ui.items[-1].text == "All functionality works"
    seeded = step_named(runbook, "Step 2.2: Apply Database Migrations")
    # The ```sql block indented inside "- [ ] Sample query returns categories:" is code, verbatim.
    assert seeded.code_blocks[-1].code == "SELECT name, emoji FROM expense_categories LIMIT 5;\n"
    assert runbook.phases[0].title == "Multi-Expense Account Management Platform (MBM-116)"
    assert runbook.phases[0].steps == [] and runbook.phases[0].description.startswith("**Version:** 1.0")
    contents = runbook.phases[1]
    assert contents.title == "Table of Contents" and contents.steps == []
    assert "1. [Pre-Deployment Requirements](#pre-deployment-requirements)" in contents.description
    email = step_named(runbook, "Step R7: Post-Rollback Communication")
    assert email.code_blocks[0].code.startswith("Subject: System Maintenance Extended - Service Restored\n")


def test_expense_timeline():
    timeline = load("expense-accounts-procedure.md").timeline
    assert [(t.label, t.offset_minutes) for t in timeline] == [
        ("T-24h", -1440), ("T-4h", -240), ("T-2h", -120), ("T-1h", -60), ("T-0", 0), ("T+0", 0), ("T+5", 5),
        ("T+20", 20), ("T+40", 40), ("T+60", 60), ("T+65", 65), ("T+95", 95), ("T+125", 125), ("T+4h", 240),
    ]  # fmt: skip
    first = timeline[1]
    assert (first.activity, first.duration_min_minutes, first.duration_max_minutes, first.role, first.line) == (
        "Final staging verification", 30, 30, "QA Team", 69,
    )  # fmt: skip
    assert timeline[0].duration_min_minutes is None and timeline[4].role is None  # "-" cells


def test_smartwallet_structure():
    runbook = load("smartwallet-checklist.md")
    assert (
        runbook.description == "This checklist ensures a safe and successful production deployment of SmartWallet enhancements."
    )
    traffic = step_named(runbook, "Phase 4: Traffic Migration")
    monitor = traffic.items[1]
    assert monitor.text == "Monitor for 10 minutes"
    assert [c.text for c in monitor.children] == ["Error rate < 0.1%", "Response time < 500ms", "No critical errors"]
    assert (traffic.duration_min_minutes, traffic.duration_max_minutes) == (40, 50)
    assert traffic.offset_minutes == 45  # "10:45 AM: Begin traffic migration", start 10:00 AM
    rollback = runbook.phases[7]
    assert rollback.title == "Rollback Procedure" and rollback.description == ""
    assert rollback.steps[0].implicit and rollback.steps[0].description == "If rollback is required:"
    assert rollback.steps[0].items[0].group == "**Immediate Actions**"
    status = step_named(runbook, "Deployment Status")
    assert [(c.label, c.options) for c in status.choices] == [("Status", ["Success", "Partial", "Rolled Back"])]
    approval = step_named(runbook, "Pre-Deployment Approval")
    assert approval.items[0].text == "Engineering Manager: _________________ Date: _______"
    assert [(f.label, f.on_item) for f in approval.fields[:2]] == [
        ("Engineering Manager", True),
        ("Engineering Manager — Date", True),
    ]


def test_smartwallet_timeline_is_relative_to_the_stated_start_time():
    # "- **Time**: 10:00 AM EST (low traffic period)" under "Recommended Schedule".
    timeline = load("smartwallet-checklist.md").timeline
    assert [(t.label, t.offset_minutes) for t in timeline] == [
        ("09:30 AM", -30), ("10:00 AM", 0), ("10:15 AM", 15), ("10:30 AM", 30), ("10:40 AM", 40),
        ("10:45 AM", 45), ("11:30 AM", 90), ("11:45 AM", 105), ("12:00 PM", 120),
    ]  # fmt: skip
    assert timeline[0].activity == "Final pre-deployment checks"


# --- messy input --------------------------------------------------------------------------

BASIC = "# Deploy\n\n## Prepare\n\n### Step 1: Check\n\n- [ ] first\n  - [x] nested\n- [ ] second\n"


def test_crlf_and_lf_give_the_same_runbook():
    lf = parse_runbook(BASIC.encode())
    assert parse_runbook(BASIC.replace("\n", "\r\n").encode()) == lf
    assert parse_runbook(BASIC.replace("\n", "\r")) == lf  # old Mac line ends


def test_tabs_and_other_bullets_nest():
    runbook = parse_runbook("# T\n### S\n* [ ] star\n\t+ [ ] plus under star\n\t\t- [X] dash, ticked with a capital X\n")
    (star,) = next(runbook.steps()).items
    assert star.text == "star"
    (plus,) = star.children
    assert plus.text == "plus under star"
    assert plus.children[0].checked and plus.children[0].text == "dash, ticked with a capital X"


def test_deep_nesting():
    source = "# T\n### S\n" + "".join("  " * depth + f"- [ ] level {depth}\n" for depth in range(12))
    item = next(parse_runbook(source).steps()).items[0]
    for depth in range(1, 12):
        (item,) = item.children
        assert item.text == f"level {depth}"


def test_emoji_and_mojibake_in_headings():
    runbook = parse_runbook("# 🚀 Release “Día” Ã©tÃ©\n\n## Phase âœ… one\n\n### Step 1: Ship 📦\n\n- [ ] go\n".encode())
    # Mojibake is repaired (and reported); real emoji, accents and curly quotes are left alone.
    assert runbook.title == "🚀 Release “Día” été"
    assert runbook.phases[0].title == "Phase ✅ one"
    assert next(runbook.steps()).title == "Step 1: Ship 📦"
    assert [repair["line"] for repair in runbook.found["repairs"]] == [1, 3]
    assert runbook.found["repairs"][1] == {"line": 3, "was": "## Phase âœ… one", "now": "## Phase ✅ one"}


def test_numbered_checkboxes():
    step = next(parse_runbook("# T\n### S\n1. [ ] **1.1** Create backup\n2. [x] **1.2.** Verify it\n- [ ] **R3**\n").steps())
    assert [(i.number, i.text, i.checked) for i in step.items] == [
        ("1.1", "Create backup", False), ("1.2", "Verify it", True), ("R3", "", False),
    ]  # fmt: skip


def test_word_style_boxes_and_item_continuation_lines():
    step = next(parse_runbook("# T\n### S\n☐ Backup taken\n☑ Tests green\nand signed off\n").steps())
    assert [(i.text, i.checked) for i in step.items] == [("Backup taken", False), ("Tests green\nand signed off", True)]


def test_utf8_bom_is_dropped():
    assert parse_runbook(b"\xef\xbb\xbf# Title\n- [ ] x\n").title == "Title"


def test_utf16_with_bom():
    assert parse_runbook("# Título\n- [ ] x\n".encode("utf-16")).title == "Título"


def test_windows_1252_without_declaration():
    runbook = parse_runbook("# Caf\u00e9 deploy\n- [ ] Don\u2019t forget \u20ac\n".encode("cp1252"))
    assert runbook.title == "Café deploy"
    assert next(runbook.steps()).items[0].text == "Don’t forget €"


def test_declared_charset_wins_over_guessing():
    source = '<meta charset="koi8-r">\n\n# Выкладка\n- [ ] Проверить\n'.encode("koi8_r")
    assert parse_runbook(source).title == "Выкладка"
    latin = "<!-- encoding: latin-1 -->\n# R\u00e9sum\u00e9\n- [ ] x\n".encode("latin-1")
    assert parse_runbook(latin).title == "Résumé"


def test_tables_with_boxes_are_items_and_other_rows_stay():
    source = "# T\n### S\n| Check | Done |\n|---|---|\n| Backups | ☐ |\n| Note | keep me |\n| [x] Alerts | quiet |\n"
    step = next(parse_runbook(source).steps())
    assert [(i.text, i.checked) for i in step.items] == [("Backups", False), ("Alerts — quiet", True)]
    assert step.description == "| Check | Done |\n| --- | --- |\n| Note | keep me |"


def test_structure_inside_code_is_code():
    source = (
        "# T\n### S\n- [ ] real\n\n```\n## not a phase\n- [ ] not an item\nName: ____\n```\n\n"
        "    ### indented code\n    ☐ GO ☐ NO-GO\n"
    )
    runbook = parse_runbook(source)
    step = next(runbook.steps())
    assert len(runbook.phases) == 1 and [i.text for i in step.items] == ["real"]
    assert not step.fields and not step.gates
    assert [c.code for c in step.code_blocks] == [
        "## not a phase\n- [ ] not an item\nName: ____\n",
        "### indented code\n☐ GO ☐ NO-GO\n",
    ]


def test_gates_and_choices():
    source = (
        "# T\n### S\n**Decision:** ☐ GO ☐ NO-GO\ngo-live? ☐ go-live ☐ rollback\n"
        "**Result:** ☑ Success ☐ Failed (stop)\n- **Status**: [ ] A [x] B\nOnly one [ ] bracket is text\n"
    )
    step = next(parse_runbook(source).steps())
    assert [(g.label, g.options) for g in step.gates] == [("Decision", ["GO", "NO-GO"]), ("go-live?", ["go-live", "rollback"])]
    assert [(c.label, c.options, c.selected, c.notes) for c in step.choices] == [
        ("Result", ["Success", "Failed"], ["Success"], ["", "(stop)"]),
        ("Status", ["A", "B"], ["B"], ["", ""]),
    ]
    assert step.description == "Only one [ ] bracket is text"


def test_fields_labels():
    source = (
        "# T\n### S\nApproved by: ____\n**Time Completed:** _______\n- Product Owner: ____ Date: ____ Signature: ____\n"
        "**On call:** ________ (name and phone)\nIf it fails, stop. Error: ____\nsnake___case and `a ___ b` are not blanks\n"
        "**Next Steps:**\n\n1. ________\n2. ________\n"
    )
    step = next(parse_runbook(source).steps())
    assert [(f.label, f.hint) for f in step.fields] == [
        ("Approved by", ""), ("Time Completed", ""), ("Product Owner", ""), ("Product Owner — Date", ""),
        ("Product Owner — Signature", ""), ("On call", "(name and phone)"), ("Error", ""),
        ("Next Steps 1", ""), ("Next Steps 2", ""),
    ]  # fmt: skip
    assert "If it fails, stop." in step.description
    assert "snake___case" in step.description


def test_fill_ins_on_a_checkbox_line_stay_an_item():
    step = next(parse_runbook("# T\n### S\n- [ ] Sign: ____ Decision: ☐ GO ☐ NO-GO\n- Plain: ____\n").steps())
    assert [i.text for i in step.items] == ["Sign: ____ Decision: ☐ GO ☐ NO-GO"]
    assert [(f.label, f.on_item) for f in step.fields] == [("Sign", True), ("Plain", False)]
    assert [(g.label, g.on_item) for g in step.gates] == [("Decision", True)]


def test_step_metadata():
    source = (
        "# T\n### A\n**Responsible:** DevOps Engineer\n**Time Estimate**: 10-15 minutes\n- [ ] x\n"
        "### B\n**Duration:** 15 min\n- [ ] y\n"
    )
    first, second = parse_runbook(source).steps()
    assert (first.role, first.duration_min_minutes, first.duration_max_minutes, first.description) == (
        "DevOps Engineer",
        10,
        15,
        "",
    )
    assert (second.role, second.duration_min_minutes, second.duration_max_minutes) == (None, 15, 15)


def test_planned_start_sets_the_offset():
    source = "# T\n### A\n**Planned start:** T-1h\n**Time Estimate**: 10-15 minutes\n- [ ] x\n"
    (step,) = parse_runbook(source).steps()
    assert (step.offset_minutes, step.duration_min_minutes, step.duration_max_minutes) == (-60, 10, 15)
    assert step.description == ""  # both lines say no more than the canonical ones: they leave the description


@pytest.mark.parametrize(
    ("written", "minutes"),
    [("T-1h", -60), ("T+30", 30), ("T+1h30m", 90), ("T-90m", -90), ("T-0", 0), ("T+1h05m", 65), ("T-24h", -1440)],
)
def test_planned_start_formats(written, minutes):
    (step,) = parse_runbook(f"# T\n### A\n**Planned start:** {written}\n- [ ] x\n").steps()
    assert (step.offset_minutes, step.description) == (minutes, "")


def test_planned_start_wins_over_the_timeline_and_keeps_what_it_says_beyond_the_offset():
    source = (
        "# T\n## Timeline\n| Time | Activity |\n|---|---|\n| T+5 | Apply migrations |\n| T+20 | Deploy code |\n"
        "## Run\n### Apply migrations\n**Planned start:** T+10 (once the backup is verified)\n- [ ] migrate\n"
        "### Deploy code\n**Planned start:** 10:30 AM\n- [ ] deploy\n"
        "### Smoke tests\n**Planned start:** T+1h\n**Planned start:** T+2h\n- [ ] test\n"
    )
    migrate, deploy, smoke = parse_runbook(source).steps()
    assert migrate.offset_minutes == 10
    assert migrate.description == "**Planned start:** T+10 (once the backup is verified)"
    # Not a T-offset: the line is text, and the timeline entry gives the offset.
    assert (deploy.offset_minutes, deploy.description) == (20, "**Planned start:** 10:30 AM")
    # The first planned start counts; a later one is text.
    assert (smoke.offset_minutes, smoke.description) == (60, "**Planned start:** T+2h")


def test_planned_start_outside_a_step_is_text():
    runbook = parse_runbook("# T\n## P\n**Planned start:** T-1h\n### A\n- [ ] x\n")
    assert runbook.phases[0].description == "**Planned start:** T-1h"
    assert next(runbook.steps()).offset_minutes is None


def test_implicit_steps_and_phase_descriptions():
    source = "# T\n\nIntro.\n\n## Checks\n\nRun these:\n\n- [ ] a\n\n### Later\n\n- [ ] b\n\n## Notes\n\nJust prose.\n"
    runbook = parse_runbook(source)
    assert runbook.description == "Intro."
    checks, notes = runbook.phases
    assert [(s.title, s.implicit, s.description) for s in checks.steps] == [("Checks", True, "Run these:"), ("Later", False, "")]
    assert (notes.description, notes.steps) == ("Just prose.", [])


def test_document_without_headings_is_one_phase_with_one_step():
    runbook = parse_runbook("Before you start:\n\n- [ ] backup\n- [ ] announce\n")
    assert runbook.title == "Untitled runbook"
    (phase,) = runbook.phases
    (step,) = phase.steps
    assert (phase.title, step.title, step.implicit, len(step.items)) == ("Untitled runbook", "Untitled runbook", True, 2)


def test_title_from_first_heading_without_h1_and_skipped_levels():
    runbook = parse_runbook("## Release 42\n#### Step 1: deep step\n- [ ] a\n###### Step 2: deeper still\n- [ ] b\n")
    assert runbook.title == "Release 42"
    (phase,) = runbook.phases
    assert phase.title == "Release 42"
    assert [s.title for s in phase.steps] == ["Step 1: deep step", "Step 2: deeper still"]


def test_sections_and_deeper_headings():
    source = "# T\n## P\n### Window A\n\n---\n\n#### Step 1\n- [ ] a\n##### Step 1b\n- [ ] b\n### Step 2\n- [ ] c\n"
    steps = list(parse_runbook(source).steps())
    assert [(s.title, s.section) for s in steps] == [("Step 1", "Window A"), ("Step 1b", "Window A"), ("Step 2", None)]


def test_fill_ins_between_an_item_and_its_children_read_after_the_item():
    step = next(parse_runbook("# T\n### S\nFirst: ____\n- [ ] parent\nMiddle: ____\n  - [ ] child: ____\n- [ ] next\n").steps())
    # "Middle" is written inside the parent's tree; it reads (and is rendered) after that tree.
    assert [(f.label, f.on_item) for f in step.fields] == [("First", False), ("child", True), ("Middle", False)]


def test_leftovers_that_would_read_as_structure_are_quoted():
    # Without its first line, the 4-space continuation would become a list entry holding a
    # Responsible line, i.e. metadata the step never had. The description is quoted instead.
    step = next(parse_runbook("# T\na ___ b ___\n 0\n    - **Responsible:** DevOps Engineer\n").steps())
    assert step.role is None
    assert step.description == "> 0\n>    - **Responsible:** DevOps Engineer"


def test_raw_html_left_open_is_closed_in_the_description():
    runbook = parse_runbook("# T\n### S\n- [ ] a\n<!-- left open\n\n## not a phase\n")
    (step,) = runbook.steps()
    assert len(runbook.phases) == 1
    assert step.description == "<!-- left open\n\n## not a phase\n-->"


def test_table_of_contents_is_description():
    source = "# T\n## Table of Contents\n1. [Prepare](#prepare)\n2. [Deploy](#deploy)\n## Prepare\n### S\n- [ ] a\n"
    contents = parse_runbook(source).phases[0]
    assert contents.steps == [] and contents.description == "1. [Prepare](#prepare)\n2. [Deploy](#deploy)"


def test_roles_are_deduplicated_case_insensitively_in_order():
    source = (
        "# T\n## Timeline\n| When | Task | Owner |\n|---|---|---|\n"
        "| T-1h | Backup | dba |\n| T-0 | Go | All |\n| T+5 | Check | - |\n"
        "### Kickoff\n**Attendees:** DBA, SRE and Product Owner\n- [ ] talk\n### Approvals\n- [ ] Security approval\n"
        "- [ ] sre sign-off\n### Sign\n- Release Manager: ____ Date: ____\n"
    )
    assert parse_runbook(source).roles == ["dba", "SRE", "Product Owner", "Security", "Release Manager"]


def test_timeline_list_with_clock_times_and_no_start_time():
    timeline = parse_runbook("# T\n### Plan\n- **09:30 AM**: Checks\n- **T+15** - Verify\n- [ ] x\n").timeline
    assert [(t.label, t.offset_minutes, t.activity) for t in timeline] == [("09:30 AM", None, "Checks"), ("T+15", 15, "Verify")]


def test_synthetic_runbook_is_realistic_and_sized():
    document = make_synthetic_runbook(50_000)
    assert 50_000 <= len(document.encode()) < 52_000
    counts = parse_runbook(document).counts()
    assert counts["steps"] > 30 and counts["items"] > 200 and counts["gates"] and counts["choices"] and counts["fields"]


def test_one_megabyte_runbook_imports():
    # How fast is measured by `make bench CASE=import`, not asserted here: machines are shared and noisy.
    document = make_synthetic_runbook(1024 * 1024)
    counts = parse_runbook(document).counts()
    assert counts["items"] > 10_000


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", "", b"  \r\n\t\n", "\n\n   \n", b"\xef\xbb\xbf"])
def test_empty_file(data):
    error = import_error(data)
    assert str(error) == "The file is empty."
    assert error.line is None


def test_over_the_size_limit():
    error = import_error(b"- [ ] x\n" * 200_000, max_bytes=1024 * 1024)
    assert str(error) == "The file is larger than the 1 MB limit (1,600,000 bytes)."
    assert error.line is None
    assert "the 5 MB limit" in str(import_error("x" * (5 * 1024 * 1024 + 1)))


def test_binary_with_nul_bytes_names_the_line():
    error = import_error(b"# Title\n- [ ] x\n\x89PNG\x00\x00\x01")
    assert "looks binary" in str(error) and "NUL" in str(error)
    assert error.line == 3
    assert str(error).startswith("Line 3: ")
    assert import_error("# T\n\x00").line == 2


def test_binary_made_of_control_characters():
    error = import_error(bytes(range(1, 9)) * 100)
    assert "looks binary" in str(error) and "control characters" in str(error)


def test_declared_encoding_that_does_not_fit_names_the_line():
    error = import_error(b"<!-- encoding: ascii -->\n# T\n- [ ] caf\xe9\n")
    assert error.line == 3
    assert "ascii" in str(error) and "0xe9" in str(error)


def test_no_checklist_content():
    for source in ("# Just a title\n\nSome prose.\n", "## Phase only\n\nprose\n", "```\n- [ ] in code\n```\n"):
        error = import_error(source)
        assert str(error).startswith("No checklist content found")
        assert error.line is None


def test_nesting_too_deep_names_the_line():
    source = "# T\n- [ ] ok\n" + "".join(f"{'  ' * depth}- level {depth}\n" for depth in range(40))
    error = import_error(source)
    assert "nested too deeply" in str(error)
    assert error.line is not None and error.line > 20


def test_errors_are_value_errors():
    assert issubclass(RunbookImportError, ValueError)
