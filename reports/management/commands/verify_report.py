from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reports.verification import verify_report


class Command(BaseCommand):
    help = (
        "Check a report: signature valid, unchanged since signing, signed by this Warroom, "
        "and matching this Warroom's event log. Exit status 0 only for an authentic report."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        result = verify_report(path.read_bytes())
        self.stdout.write(result.as_text())
        if not result.verdict.is_good:
            raise CommandError(f"{result.verdict.value.upper()}: {result.headline}")
