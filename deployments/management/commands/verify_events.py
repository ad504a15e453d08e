from django.core.management.base import BaseCommand, CommandError

from deployments.events import verify_chain
from deployments.models import ChainCheckpoint, Deployment


class Command(BaseCommand):
    help = "Recompute a deployment's event hash chain, check it against its signed checkpoints, name the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)

    def handle(self, *args, deployment_id, **options):
        if not Deployment.objects.filter(pk=deployment_id).exists():
            raise CommandError(f"No deployment with id {deployment_id}.")
        report = verify_chain(deployment_id)
        for note in report.notes:
            self.stderr.write(f"Note: {note}")
        if not report.ok:
            raise CommandError(f"Chain broken at event #{report.broken_at}: {report.problem}")
        anchored = ChainCheckpoint.objects.filter(deployment_id=deployment_id).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {report.count} events, last hash {report.last_hash}; "
                f"matches {anchored} signed checkpoint{'s' if anchored != 1 else ''}"
            )
        )
