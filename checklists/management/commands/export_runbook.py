"""python manage.py export_runbook VERSION_ID [--out FILE]

Writes a template version as Markdown that import_runbook reads back into the
same structure.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from checklists.importing import export_markdown
from checklists.models import RunbookVersion


class Command(BaseCommand):
    help = "Export a runbook template version as Markdown."

    def add_arguments(self, parser):
        parser.add_argument("version_id", type=int, help="The id of the runbook version")
        parser.add_argument("--out", metavar="FILE", help="Write to this file instead of standard output")

    def handle(self, *args, version_id, out, **options):
        version = RunbookVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise CommandError(f"No runbook version with id {version_id}.")
        markdown = export_markdown(version)
        if not out:
            self.stdout.write(markdown, ending="")
            return
        try:
            Path(out).write_text(markdown, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"{out}: cannot write it ({error.strerror}).") from None
        self.stderr.write(f"Wrote “{version.title}” v{version.number} to {out} ({len(markdown.encode()):,} bytes).")
