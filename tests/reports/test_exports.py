"""Markdown and JSON from the same record as the PDF; report sections other apps fill in;
every format from the command line."""

import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command

from deployments import services as deployment_services
from deployments.events import event_hash
from deployments.models import Deployment, DeploymentState, Item
from reports import sections, services
from reports.exports import export_report
from reports.models import Outcome
from reports.record import build_record
from tests.factories import PASSWORD
from tests.reports.conftest import pdf_pages_text


def test_markdown_is_the_runbook_as_filled_in(finished_crew):
    deployment, people = finished_crew
    services.sign_off(
        deployment.pk, people["qa"], role_name="QA Lead", outcome=Outcome.SUCCESS, statement="Done.", password=PASSWORD
    )
    markdown = export_report(deployment.pk, "md").content.decode()
    assert markdown.startswith("# Expense Accounts 3.4 — deployment report")
    ticked = next(line for line in markdown.splitlines() if "Verify component 1.1.2" in line)
    assert ticked.startswith("  - [x] Verify component 1.1.2 — Quinn Assurance, 20")  # child of its group, who and when
    assert "  > Screenshot attached to JIRA-1234" in markdown
    assert "- [ ] Verify component 2.1.1" in markdown
    assert "- **Time Completed:** 02:45 — Quinn Assurance" in markdown
    assert "- **Decision:** ☐ GO ☐ NO-GO" in markdown
    assert "- **QA Lead:** signed off by Quinn Assurance — Success" in markdown  # the runbook's own sign-off line
    assert "- **Product Owner:** not signed" in markdown
    assert "No task runs were recorded." in markdown
    deployment.refresh_from_db()
    assert f"final hash `{deployment.last_event_hash}`" in markdown
    assert "INTERIM" not in markdown


def test_interim_markdown_says_so(report_crew):
    deployment, _ = report_crew
    assert "**INTERIM REPORT**" in export_report(deployment.pk, "md").content.decode()


def test_json_record_carries_every_event_and_recomputes(finished_crew):
    deployment, _ = finished_crew
    record = json.loads(export_report(deployment.pk, "json").content)
    deployment = Deployment.objects.get(pk=deployment.pk)
    assert record["format"] == "warroom-report/1"
    assert len(record["events"]) == deployment.event_count
    # The chain can be recomputed from the JSON alone.
    prev = ""
    for event in record["events"]:
        fields = {k: event[k] for k in ("seq", "actor_id", "actor_label", "action", "object_type", "object_id", "summary")}
        recomputed = event_hash(
            deployment_id=deployment.pk,
            created_at=datetime.fromisoformat(event["created_at"]),
            before=event["before"],
            after=event["after"],
            prev_hash=prev,
            **fields,
        )
        assert recomputed == event["hash"]
        prev = event["hash"]
    assert prev == deployment.last_event_hash == record["chain"]["final_hash"]
    items = [item for phase in record["phases"] for step in phase["steps"] for item in step["items"]]
    assert len([i for i in items if not i["is_group"]]) == Item.objects.filter(deployment=deployment, is_group=False).count()
    ticked = next(i for i in items if i["text"] == "Verify component 1.1.1")
    assert ticked["done"] and ticked["done_by"] == "Quinn Assurance" and ticked["done_at"]


def test_summary_counts(finished_crew):
    deployment, _ = finished_crew
    summary = build_record(deployment.pk)["summary"]
    assert summary["items_done"] == 14  # 12 ticks and 2 fields, see conftest.run_some_of_it
    assert summary["items_total"] == Item.objects.filter(deployment=deployment, is_group=False).count()
    assert summary["headline"] == "Completed"
    assert summary["sections"]["task_runs"] == "No task runs were recorded."
    assert summary["sections"]["gates"] == "1 gate, 0 decided"


@pytest.fixture
def incident_provider(monkeypatch):
    def incidents(deployment):
        return sections.Section(
            summary="1 incident, resolved",
            tables=[
                sections.Table(
                    caption="Incidents",
                    columns=["When", "What", "Resolution"],
                    rows=[[deployment.planned_t0, "Error rate spike | 5xx", "Rolled forward"]],
                )
            ],
            records=[{"what": "Error rate spike", "at": deployment.planned_t0}],
        )

    # monkeypatch puts the incidents app's own provider back afterwards, for the tests that follow.
    monkeypatch.setitem(sections._providers, "incidents", incidents)


def test_other_apps_fill_report_sections(finished_crew, incident_provider, tmp_path):
    deployment, _ = finished_crew
    record = build_record(deployment.pk)
    incidents = next(s for s in record["sections"] if s["key"] == "incidents")
    assert incidents["summary"] == "1 incident, resolved"
    assert incidents["tables"][0]["rows"][0][0].endswith(("CET", "CEST"))  # datetimes shown in the deployment's zone
    assert incidents["records"][0]["what"] == "Error rate spike"
    markdown = export_report(deployment.pk, "md").content.decode()
    assert "| When | What | Resolution |" in markdown and "Error rate spike \\| 5xx" in markdown

    text = "\n".join(pdf_pages_text(export_report(deployment.pk, "pdf").content, tmp_path))
    assert "Rolled forward" in text and "No incidents were recorded." not in text


def test_a_failing_section_costs_a_section_not_the_report(finished_crew):
    deployment, _ = finished_crew

    def broken(deployment):
        raise RuntimeError("rollouts table missing")

    with pytest.MonkeyPatch.context() as patch:  # the rollouts app's own provider comes back afterwards
        patch.setitem(sections._providers, "rollouts", broken)
        record = build_record(deployment.pk)
    rollouts = next(s for s in record["sections"] if s["key"] == "rollouts")
    assert rollouts["summary"] == "This section could not be collected (see the server log)."


def test_unknown_section_is_refused():
    with pytest.raises(ValueError, match="Unknown report section 'weather'"):
        sections.provide("weather", lambda deployment: None)


# --- command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "starts"), [("pdf", b"%PDF-"), ("md", b"# Expense Accounts 3.4"), ("json", b"{")])
def test_export_report_command(finished_crew, tmp_path, capsys, fmt, starts):
    deployment, _ = finished_crew
    out = tmp_path / f"report.{fmt}"
    call_command("export_report", str(deployment.pk), "--format", fmt, "--out", str(out))
    assert out.read_bytes().startswith(starts)
    said = capsys.readouterr().out
    assert f"Wrote {out}" in said and "final hash" in said


def test_export_report_command_refuses_nonsense(db, tmp_path):
    with pytest.raises(CommandError, match="No deployment with id 999999"):
        call_command("export_report", "999999", "--out", str(tmp_path / "x.pdf"))


def test_verify_report_command(finished_crew, tmp_path, capsys):
    deployment, _ = finished_crew
    good = tmp_path / "good.pdf"
    call_command("export_report", str(deployment.pk), "--out", str(good))
    call_command("verify_report", str(good))
    assert "Verdict: AUTHENTIC" in capsys.readouterr().out
    appended = tmp_path / "appended.pdf"
    note = b"% a note added later\n"
    appended.write_bytes(good.read_bytes() + note)
    with pytest.raises(CommandError, match="MODIFIED"):
        call_command("verify_report", str(appended))
    assert f"{len(note)} bytes after the signed end" in capsys.readouterr().out
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(CommandError, match="NOT A PDF"):
        call_command("verify_report", str(bad))
    with pytest.raises(CommandError, match="No such file"):
        call_command("verify_report", str(tmp_path / "missing.pdf"))


def test_ensure_signing_identity_creates_it_once(db, settings, tmp_path, capsys, caplog):
    settings.REPORT_SIGNING_DIR = tmp_path / "signing"
    call_command("ensure_signing_identity")
    first = capsys.readouterr().out
    assert "Generated a self-signed signing identity" in first and "SHA-256" in first
    assert "generated a self-signed certificate" in caplog.text  # logged clearly, for the server log too
    key = settings.REPORT_SIGNING_DIR / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    call_command("ensure_signing_identity")
    second = capsys.readouterr().out
    assert "generated earlier" in second
    assert first.split("SHA-256:")[1].split()[0] == second.split("SHA-256:")[1].split()[0]


def test_html_a_user_typed_is_escaped_in_the_markdown_export(report_crew):
    deployment, people = report_crew
    item = Item.objects.filter(deployment=deployment, kind="check", checked=False, is_group=False).first()
    deployment_services.update_item(
        item.pk, people["lead"], revision=None, checked=True, note="<script>alert('note')</script> & more"
    )
    deployment_services.change_state(
        deployment.pk, people["lead"], DeploymentState.COMPLETED, override_reason="Export test: the checklist is not the point"
    )
    services.sign_off(
        deployment.pk,
        people["qa"],
        role_name="QA Lead",
        outcome=Outcome.SUCCESS,
        statement='<img src=x onerror="alert(1)"> all green',
        password=PASSWORD,
    )
    markdown = export_report(deployment.pk, "md").content.decode()
    assert "<script" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;alert('note')&lt;/script&gt; & more" in markdown  # shown as typed once rendered
    assert '&lt;img src=x onerror="alert(1)"&gt; all green' in markdown
    assert "- [x] " in markdown and "## Sign-offs" in markdown  # the Markdown itself is untouched


def test_the_reader_picks_the_time_zone_at_export(report_crew):
    """Planned in Berlin; read in New York and Tokyo. T-0 fixed at a known instant, converted by hand."""
    deployment, _ = report_crew
    Deployment.objects.filter(pk=deployment.pk).update(planned_t0=datetime(2026, 7, 1, 20, 0, tzinfo=UTC))
    default = export_report(deployment.pk, "md").content.decode()
    assert "Times are shown in Europe/Berlin." in default
    assert "**T-0 planned:** 2026-07-01 22:00 CEST" in default  # UTC+2 in summer
    new_york = export_report(deployment.pk, "md", zone="America/New_York").content.decode()
    assert "Times are shown in America/New_York." in new_york
    assert "**T-0 planned:** 2026-07-01 16:00 EDT" in new_york  # UTC-4 in summer
    record = json.loads(export_report(deployment.pk, "json", zone="Asia/Tokyo").content)
    assert record["display_zone"] == "Asia/Tokyo" and record["deployment"]["planned_t0"].startswith("2026-07-01T20:00:00")
    # Nonsense falls back to the deployment's zone rather than failing the export.
    assert "Times are shown in Europe/Berlin." in export_report(deployment.pk, "md", zone="Mars/Olympus").content.decode()
    with pytest.raises(CommandError, match="Unknown time zone"):
        call_command("export_report", deployment.pk, "--format", "md", "--out", "-", "--tz", "Mars/Olympus")
