"""Recognition of meaning (checklists.recognition) on runbooks written in styles the parser was not built from.

The three runbooks under ``runbooks/`` were written for these tests — an ops wiki page made of
tables, a numbered ``1. [ ]`` release checklist with sign-off blanks, a canary plan with a rollout
table and an escalation list — and every expected value below was worked out by reading them,
line by line, not by running the importer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checklists.parsing import RunbookImportError, parse_runbook

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"


def found(name: str) -> dict:
    return parse_runbook((RUNBOOKS / name).read_bytes()).found


def lines(entries: list[dict]) -> list[int]:
    return [entry["line"] for entry in entries]


# --- an ops wiki page made of tables -------------------------------------------------------------


def test_ops_wiki_timeline_table_gives_offsets():
    timeline = found("ops-wiki-tables.md")["timeline"]
    assert [(t["line"], t["offset_minutes"]) for t in timeline] == [(9, -2880), (10, -240), (11, 0), (12, 30)]


def test_ops_wiki_thresholds_in_a_table_and_in_a_sentence():
    thresholds = found("ops-wiki-tables.md")["thresholds"]
    assert [(t["line"], t["metric"], t["op"], t["value"], t["unit"]) for t in thresholds] == [
        (26, "Error rate", "<", 1, "%"),
        (27, "p95 latency", "<", 200, "ms"),
        (28, "Settlement success", ">=", 99.9, "%"),
        (40, "error rate", "<", 1, "%"),
    ]
    assert thresholds[-1]["for_minutes"] == 15


def test_ops_wiki_escalation_table_gives_levels_channels_and_windows():
    contacts = found("ops-wiki-tables.md")["contacts"]
    assert [(c["line"], c["level"], c["role"], c["window_minutes"]) for c in contacts] == [
        (34, 1, "On-call engineer", [0, 15]),
        (35, 2, "SRE Lead", [15, 30]),
        (36, 3, "Director of Engineering", [30, 60]),
    ]
    assert contacts[1]["channel"] == "Slack #payments-ops"


def test_ops_wiki_go_no_go_keeps_its_proceed_if_criteria():
    (gate,) = found("ops-wiki-tables.md")["gates"]
    assert gate["line"] == 40
    assert gate["criteria"] == "error rate stays under 1% for 15 minutes after the switch"


def test_ops_wiki_roles_and_checklist_table_items():
    parsed = parse_runbook((RUNBOOKS / "ops-wiki-tables.md").read_bytes())
    assert parsed.counts()["items"] == 4 and parsed.counts()["checked_items"] == 1
    names = {role["name"] for role in parsed.found["roles"]}
    assert {"Platform SRE", "Release Manager", "DBA", "QA", "On-call engineer", "SRE Lead"} <= names
    assert not any("Start time" in name for name in names)


# --- a numbered release checklist with sign-off blanks ---------------------------------------------


def test_release_checklist_approvals_name_their_roles():
    approvals = found("release-numbered.md")["approvals"]
    assert [(a["line"], a["role"]) for a in approvals] == [
        (14, "QA"),
        (15, "Security team"),
        (16, "Product Owner"),
        (33, "Engineering Manager"),
        (35, "QA Lead"),
    ]


def test_release_checklist_relative_times_in_every_notation():
    timeline = found("release-numbered.md")["timeline"]
    assert [(t["line"], t["offset_minutes"], t["read"]) for t in timeline] == [
        (5, -7200, "T-minus 5 days"),
        (9, -1440, "Day -1"),
        (10, -2880, "D-2"),
        (20, -60, "T-1h"),
        (23, 0, "T+0"),
    ]
    assert timeline[0]["notation"] == "T-minus N"


def test_release_checklist_gates_hold_point_and_rollback_list():
    gates = found("release-numbered.md")["gates"]
    assert lines(gates) == [22, 26]
    assert gates[1]["criteria"] == "Crash rate above 2%; Login failures reported by Support"


def test_qa_qa_team_and_qa_lead_are_one_role_and_the_merge_is_reported():
    result = found("release-numbered.md")
    qa = [role for role in result["roles"] if role["name"] == "QA Lead"]
    assert len(qa) == 1 and set(qa[0]["variants"]) == {"QA", "QA team", "QA Lead"}
    assert {"name": "QA Lead", "merged": ["QA", "QA team"]} in result["role_merges"]


def test_placeholders_are_fields_never_roles():
    result = found("release-numbered.md")
    assert [(f["line"], f["label"]) for f in result["fields"] if f["how"] == "placeholder"] == [
        (3, "Release Manager Name"),
        (3, "Phone"),
    ]
    assert not any("[" in role["name"] or "Name" in role["name"] for role in result["roles"])


# --- a canary plan: rollout stages, escalation list, mojibake -----------------------------------------


def test_canary_stages_from_headings_labels_tables_and_nginx():
    stages = found("canary-escalation.md")["rollout_stages"]
    assert [(s["line"], s["percent"], s["hold_minutes"]) for s in stages] == [
        (10, 5, 30),  # "## Stage 1 (5%)" with "**Traffic**: 5% of users" (the same stage) and a 30-minute duration
        (18, 25, 120),
        (28, 100, 0),  # the rollout table's row
        (33, 5, None),  # nginx: weight=5 of 95+5
    ]


def test_canary_stage_gate_keeps_its_exit_criteria():
    gates = found("canary-escalation.md")["gates"]
    assert lines(gates) == [10, 22]
    assert gates[0]["criteria"] == "Exit Criteria: Error rate < 0.5%; Exit Criteria: p95 < 200ms"


def test_canary_escalation_levels_and_windows():
    contacts = found("canary-escalation.md")["contacts"]
    assert [(c["line"], c["level"], c["role"], c["channel"], c.get("window_minutes")) for c in contacts] == [
        (43, 1, "On-call engineer", "PagerDuty", [0, 15]),
        (44, 2, "Search team lead", "Slack", [15, 30]),
        (45, 3, "Engineering Manager", "phone", None),
    ]


def test_canary_range_window_and_quoted_comparison():
    result = found("canary-escalation.md")
    timeline = {t["line"]: t for t in result["timeline"]}
    assert (timeline[3]["offset_minutes"], timeline[3]["end_offset_minutes"], timeline[3]["notation"]) == (-240, 1680, "T-range")
    assert (timeline[5]["offset_minutes"], timeline[5]["end_offset_minutes"]) == (0, 120)
    # "- > 99.9 % success" is a quote to Markdown; its author meant a threshold.
    assert [(t["line"], t["op"], t["value"], t["unit"]) for t in result["thresholds"]][-1] == (39, ">", 99.9, "%")


def test_mojibake_is_repaired_and_reported():
    parsed = parse_runbook((RUNBOOKS / "canary-escalation.md").read_bytes())
    assert parsed.title == "Search service canary 🚀"
    assert [(r["line"], r["now"]) for r in parsed.found["repairs"]] == [
        (1, "# Search service canary 🚀"),
        (3, "Window: T-4h to T+28h. ✅ means done."),
    ]


# --- notations, one line each -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "offset", "end", "notation"),
    [
        ("**T-72 hours (3 days before)**: freeze", -4320, None, "T±N"),
        ("- [ ] T+1h: Check error rate < 1%", 60, None, "T±N"),
        ("### Week 1: hardening", 10080, None, "Week N"),
        ("### Day 2-3: Beta", 2880, 4320, "Day N"),
        ("- [ ] T-2: freeze", -2, None, "T±N (no unit: minutes)"),
        ("- [ ] T+30m: verify", 30, None, "T±N"),
        ("**One week before launch:**", -10080, None, "N units before/after"),
        ("- [ ] Cut-over T-4h to T+28h", -240, 1680, "T-range"),
    ],
)
def test_relative_time_notations(line, offset, end, notation):
    (entry,) = parse_runbook(f"# R\n\n## P\n\n{line}\n\n- [ ] x\n").found["timeline"]
    assert (entry["offset_minutes"], entry.get("end_offset_minutes"), entry["notation"]) == (offset, end, notation)


def test_several_times_on_one_line_are_all_read():
    (entry,) = parse_runbook("# R\n\n- [ ] T-1h announce, T+0 switch, T+30m verify\n").found["timeline"]
    assert entry["offset_minutes"] == -60
    assert [also["offset_minutes"] for also in entry["also"]] == [0, 30]


def test_code_front_matter_and_html_comments_are_not_read():
    text = (
        "---\ntitle: Go/No-Go at T-4h\n---\n# R\n\n<!--\nDecision: proceed or rollback\n-->\n\n"
        "```\nError rate < 1%\n```\n\n- [ ] x\n"
    )
    result = parse_runbook(text).found
    assert result["gates"] == [] and result["timeline"] == [] and result["thresholds"] == []


def test_a_plain_duration_is_not_an_offset_and_a_stage_needs_traffic_words():
    result = parse_runbook("# R\n\n- [ ] Monitor for 48 hours\n- [ ] Enable GA (100%)\n- Feature adoption > 10%\n").found
    assert result["timeline"] == [] and result["rollout_stages"] == []
    assert [(t["metric"], t["value"]) for t in result["thresholds"]] == [("Feature adoption", 10)]


_PIECES = st.sampled_from(
    ["# T", "## P", "### Step", "- [ ] ", "1. [ ] ", "| a | b |", "|---|---|", "**Go/No-Go**:", "T-4h", "T-minus",
     "Day -1", "(0-2 hours)", "< 1%", "> 99.9 %", "p95", "Stage 2 (5%)", "weight=5", "[Name]", "____", "Date:",
     "sign-off", "Escalation", "1. On-call (0-15 min)", "<mark>x</mark>", "<!--", "```", "---", "âœ…", "\t", " ", "\n",
     "If x:", "proceed if", "QA team", "Lead", "(", ")", ":", "#"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=40))
def test_recognition_never_fails_on_hostile_markdown(pieces):
    text = "".join(pieces)
    try:
        runbook = parse_runbook(text)
    except RunbookImportError:
        return
    total = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1  # as the importer reads lines
    for kind, entries in runbook.found.items():
        for entry in entries:
            if kind == "roles":
                assert all(1 <= line <= total for line in entry["lines"])
            else:
                assert 1 <= entry["line"] <= total


def test_clock_times_are_relative_to_the_start_the_runbook_states():
    text = (
        "# Night cut-over\n\n**Start time:** 21:00 CET\n\n## Steps\n\n"
        "### 20:30 CET: final checks\n\n- [ ] 22:15 CET: open traffic\n"
    )
    timeline = parse_runbook(text).found["timeline"]
    assert [(t["line"], t["offset_minutes"], t["read"]) for t in timeline] == [(7, -30, "20:30 CET"), (9, 75, "22:15 CET")]
    assert timeline[0]["notation"] == "clock time (relative to the stated start)"
    # Without a stated start, a clock time is not an offset.
    assert parse_runbook("# R\n\n- [ ] 22:15 CET: open traffic\n").found["timeline"] == []


# --- a go-live template: contacts table with levels, bold time labels, proceed-if, rollback list --------


def test_golive_template():
    result = found("golive-template.md")
    assert [(g["line"], g["criteria"]) for g in result["gates"]] == [
        (30, "conversion error count is 0"),
        (35, "Medication orders failing for more than 15 minutes; Error rate > 5%"),
    ]
    assert [(a["line"], a["role"]) for a in result["approvals"]] == [(21, "Radiology Lead"), (22, "Pharmacy Lead")]
    assert [(t["line"], t["offset_minutes"]) for t in result["timeline"]] == [
        (11, -4320), (13, -4320), (17, -1440), (26, -240), (28, -240), (31, 0),
    ]  # fmt: skip
    assert [(c["line"], c["level"], c["name"]) for c in result["contacts"][:3]] == [
        (7, 1, "Go-Live Commander"), (8, 2, "Clinical Lead"), (9, 3, "CIO"),
    ]  # fmt: skip
    assert [(t["line"], t["op"], t["value"], t["unit"]) for t in result["thresholds"]] == [
        (23, "<", 0.5, "%"), (24, "<", 2, "min"), (37, ">", 5, "%"),
    ]  # fmt: skip
    assert [(f["line"], f["label"]) for f in result["fields"]] == [
        (7, "Name"), (7, "Phone"), (8, "Name"), (8, "Phone"), (9, "Name"), (9, "Phone"),
    ]  # fmt: skip
    assert not any(role["name"] in ("Name", "Phone") for role in result["roles"])


# --- a progressive-delivery plan: holds written on the stage's own line ----------------------------------


def test_a_hold_written_on_the_stage_line_is_the_stage_hold():
    stages = found("progressive-delivery.md")["rollout_stages"]
    assert [(s["line"], s["percent"], s["hold_minutes"]) for s in stages] == [
        (5, 10, 15),  # "### Stage 1 (10%) — hold 15 min"
        (9, 50, 120),  # "### Stage 2 (50%): bake for 2 hours"
        (15, 5, 30),  # "- Canary 5% of traffic for 30 minutes"
    ]
