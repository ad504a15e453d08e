"""manage.py import_runbook and export_runbook, against the real test database."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from checklists.importing import export_markdown
from checklists.models import Runbook, RunbookVersion, TemplateItem, TemplateStep
from checklists.parsing import parse_runbook
from tests.factories import make_user

BASE_DIR = Path(__file__).resolve().parents[2]
SHARED = BASE_DIR / "checklists" / "demo"  # the shared runbooks, kept in the repo
EXPENSE = SHARED / "expense-accounts-procedure.md"
SMARTWALLET = SHARED / "smartwallet-checklist.md"
COUNT_KEYS = ["title", "phases", "steps", "items", "checked_items", "fields", "choices", "gates", "timeline_entries", "roles"]

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize("path", [EXPENSE, SMARTWALLET], ids=lambda p: p.name)
def test_import_json_prints_the_counts_and_stores_a_version(path):
    summary = json.loads(run("import_runbook", str(path), "--json"))
    assert {key: summary[key] for key in COUNT_KEYS} == parse_runbook(path.read_bytes()).counts()
    version = RunbookVersion.objects.get(pk=summary["version_id"])
    assert (summary["runbook_id"], summary["version"]) == (version.runbook_id, 1)
    assert TemplateStep.objects.filter(phase__version=version).count() == summary["steps"]


def test_import_json_output_is_one_json_object_on_one_line():
    output = run("import_runbook", str(EXPENSE), "--json", "--dry-run")
    assert output.count("\n") == 1
    summary = json.loads(output)
    assert list(summary) == [*COUNT_KEYS, "found", "understood", "placement"]
    assert summary["gates"] == 2 and "Product Owner" in summary["roles"]
    kinds = ["gates", "approvals", "timeline", "roles", "contacts", "thresholds", "rollout_stages", "fields"]
    assert all(kind in summary["found"] for kind in kinds)
    assert any(line.startswith("6 go/no-go gates and decision points") for line in summary["understood"])
    assert "roles merged: QA team, QA, QA Team → QA Lead" in summary["understood"]


def test_dry_run_stores_nothing():
    output = run("import_runbook", str(SMARTWALLET), "--dry-run")
    assert "can be imported (dry run, nothing stored)" in output and "38 steps" in output
    assert not Runbook.objects.exists()


def test_human_output_and_second_import_is_a_new_version():
    make_user("lena")
    first = run("import_runbook", str(EXPENSE), "--user", "lena")
    assert "imported “Production Deployment Procedure” as new runbook" in first
    second = run("import_runbook", str(EXPENSE))
    runbook = Runbook.objects.get()
    assert f"as version 2 of runbook {runbook.pk}" in second
    assert runbook.versions.get(number=1).created_by.username == "lena"


def test_runbook_option_adds_a_version_to_that_runbook():
    summary = json.loads(run("import_runbook", str(EXPENSE), "--json"))
    other = json.loads(run("import_runbook", str(SMARTWALLET), "--json", "--runbook", str(summary["runbook_id"])))
    assert (other["runbook_id"], other["version"]) == (summary["runbook_id"], 2)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"# T\n\n## P\n\n- [ ] ok\n- [ ] \x00\n", "Line 6: The file looks binary"),
        (b"Nothing to tick here.\n", "No checklist content found"),
    ],
)
def test_bad_input_fails_with_the_parser_message_and_changes_nothing(tmp_path, content, message):
    path = tmp_path / "bad.md"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message) as caught:
        run("import_runbook", str(path))
    assert str(caught.value).startswith("bad.md: ")
    assert not Runbook.objects.exists() and not TemplateItem.objects.exists()


def test_too_large_a_file_is_refused(tmp_path, settings):
    settings.RUNBOOK_MAX_BYTES = 1024
    path = tmp_path / "big.md"
    path.write_bytes(b"# Big\n\n" + b"- [ ] check\n" * 200)
    with pytest.raises(CommandError, match="larger than the"):
        run("import_runbook", str(path))
    assert not Runbook.objects.exists()


def test_missing_file_unknown_runbook_and_user(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_runbook", str(tmp_path / "missing.md"))
    with pytest.raises(CommandError, match="No runbook with id 424242"):
        run("import_runbook", str(EXPENSE), "--runbook", "424242")
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("import_runbook", str(EXPENSE), "--user", "ghost")
    assert not Runbook.objects.exists()


def test_export_to_stdout_and_to_a_file(tmp_path):
    summary = json.loads(run("import_runbook", str(EXPENSE), "--json"))
    version = RunbookVersion.objects.get(pk=summary["version_id"])
    assert run("export_runbook", str(version.pk)) == export_markdown(version)
    out = tmp_path / "exported.md"
    run("export_runbook", str(version.pk), "--out", str(out))
    assert out.read_text(encoding="utf-8") == export_markdown(version)
    with pytest.raises(CommandError, match="No runbook version with id 999999"):
        run("export_runbook", "999999")


def test_commands_round_trip(tmp_path):
    """import → export_runbook --out → import_runbook: same counts, next version of the same runbook."""
    first = json.loads(run("import_runbook", str(EXPENSE), "--json"))
    out = tmp_path / "round.md"
    run("export_runbook", str(first["version_id"]), "--out", str(out))
    second = json.loads(run("import_runbook", str(out), "--json"))
    assert {k: second[k] for k in COUNT_KEYS} == {k: first[k] for k in COUNT_KEYS}
    assert (second["runbook_id"], second["version"]) == (first["runbook_id"], 2)


def test_the_command_line_exit_code_and_message():
    """Through a real process: bad input exits 1 with the message on stderr (no database needed)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "import_runbook", "-", "--dry-run"],
        input=b"just words\n",
        capture_output=True,
        cwd=BASE_DIR,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert b"stdin: No checklist content found" in result.stderr
