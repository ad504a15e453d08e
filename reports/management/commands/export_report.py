import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from deployments.models import Deployment
from reports.exports import FORMATS, export_report
from reports.formatting import reader_zone
from reports.models import Paper


class Command(BaseCommand):
    help = "Export a deployment's report: a signed PDF, the filled-in runbook as Markdown, or the JSON record."

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)
        parser.add_argument("--format", dest="fmt", choices=list(FORMATS), default="pdf")
        parser.add_argument("--out", required=True, help="File to write; '-' writes Markdown or JSON to stdout")
        parser.add_argument("--paper", choices=Paper.values, default=None, help="PDF paper size (default: WARROOM_REPORT_PAPER)")
        parser.add_argument(
            "--tz", default=None, help="Show times in this IANA zone, e.g. Europe/Berlin (default: the deployment's)"
        )

    def handle(self, *args, deployment_id, fmt, out, paper, tz, **options):
        if not Deployment.objects.filter(pk=deployment_id).exists():
            raise CommandError(f"No deployment with id {deployment_id}.")
        if out == "-" and fmt == "pdf":
            raise CommandError("A PDF is binary: give --out a file name.")
        if tz and reader_zone(tz, "") != tz:
            raise CommandError(f"Unknown time zone {tz!r}: give an IANA name such as Europe/Berlin.")
        made = export_report(deployment_id, fmt, paper=paper, zone=tz)
        if out == "-":
            sys.stdout.write(made.content.decode())
            return
        target = Path(out)
        if target.is_dir():
            target = target / made.filename
        target.write_bytes(made.content)
        what = f"{made.pages} pages, signed" if fmt == "pdf" else fmt.upper()
        interim = " (INTERIM: the deployment has not finished)" if made.record["interim"] else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {target} ({len(made.content):,} bytes, {what}){interim}; "
                f"{made.record['chain']['count']} events, final hash {made.record['chain']['final_hash']}"
            )
        )
