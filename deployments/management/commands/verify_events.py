from django.core.management.base import BaseCommand, CommandError

from deployments.events import verify_chain
from deployments.models import Deployment


class Command(BaseCommand):
    help = "Recompute a deployment's event hash chain and name the first broken link."

    def add_arguments(self, parser):
        parser.add_argument("deployment_id", type=int)

    def handle(self, *args, deployment_id, **options):
        if not Deployment.objects.filter(pk=deployment_id).exists():
            raise CommandError(f"No deployment with id {deployment_id}.")
        report = verify_chain(deployment_id)
        if not report.ok:
            raise CommandError(f"Chain broken at event #{report.broken_at}: {report.problem}")
        self.stdout.write(self.style.SUCCESS(f"OK: {report.count} events, last hash {report.last_hash}"))
