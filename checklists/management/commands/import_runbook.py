"""python manage.py import_runbook PATH [--dry-run] [--json] [--runbook ID | --new] [--user NAME]

Imports a Markdown runbook as a new template version: of --runbook, or a new runbook with
--new, or else of the runbook with the same title *and* substantially the same structure
(a different runbook that shares a title becomes a runbook of its own). Says what was
recognised (gates, approvals, times and the notation read, roles and their merges, contacts,
thresholds, rollout stages, fields, repaired mojibake). Bad input fails with the parser's
message, naming the line, and changes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from checklists.importing import RunbookImportError, import_runbook
from checklists.models import Runbook
from checklists.recognition import understood_lines


class Command(BaseCommand):
    help = "Import a Markdown deployment runbook as a runbook template version."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The Markdown file, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="Parse and report; store nothing")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object: the counts")
        parser.add_argument(
            "--runbook", type=int, metavar="ID", help="Add the version to this runbook (default: same title and structure)"
        )
        parser.add_argument("--new", action="store_true", dest="as_new", help="Always make a new runbook")
        parser.add_argument("--user", metavar="USERNAME", help="Record this user as the importer")

    def handle(self, *args, path, dry_run, as_json, runbook, user, as_new=False, **options):
        if as_new and runbook is not None:
            raise CommandError("Choose --runbook or --new, not both.")
        data, filename = self._read(path)
        target = None
        if runbook is not None:
            target = Runbook.objects.filter(pk=runbook).first()
            if target is None:
                raise CommandError(f"No runbook with id {runbook}.")
        importer = None
        if user:
            importer = get_user_model().objects.filter(username=user).first()
            if importer is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            outcome = import_runbook(data, filename=filename, user=importer, runbook=target, dry_run=dry_run, as_new=as_new)
        except RunbookImportError as error:
            raise CommandError(f"{filename}: {error}") from None
        summary = outcome.summary()
        if as_json:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
            return
        self.stdout.write(self._describe(summary, outcome, filename, dry_run))

    def _read(self, path: str) -> tuple[bytes, str]:
        limit = settings.RUNBOOK_MAX_BYTES
        if path == "-":
            return sys.stdin.buffer.read(limit + 1), "stdin"
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"{path}: no such file.")
        try:
            with file.open("rb") as handle:
                # One byte over the limit is enough for the importer to refuse it by size.
                return handle.read(limit + 1), file.name
        except OSError as error:
            raise CommandError(f"{path}: cannot read it ({error.strerror}).") from None

    def _describe(self, summary: dict, outcome, filename: str, dry_run: bool) -> str:
        roles = ", ".join(summary["roles"]) or "none"
        body = (
            f"  {summary['phases']} phases, {summary['steps']} steps, {summary['items']} checklist items "
            f"({summary['checked_items']} ticked), {summary['fields']} fields, {summary['choices']} choices, "
            f"{summary['gates']} go/no-go gates, {summary['timeline_entries']} timeline entries\n  roles: {roles}"
        )
        body += "\n" + "\n".join(f"  {line}" for line in understood_lines(summary["found"]))
        if summary.get("placement"):
            body += f"\n  goes to: {summary['placement']}"
        if dry_run:
            return self.style.SUCCESS(f"{filename}: “{summary['title']}” can be imported (dry run, nothing stored)") + "\n" + body
        version = outcome.version
        what = "new runbook" if outcome.created_runbook else f"version {version.number} of runbook {version.runbook_id}"
        head = f"{filename}: imported “{summary['title']}” as {what} (version id {version.pk})"
        return self.style.SUCCESS(head) + "\n" + body
