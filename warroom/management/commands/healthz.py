import json

from django.core.management.base import BaseCommand, CommandError

from warroom.health import run_checks


class Command(BaseCommand):
    help = "Check the database, Redis and a Celery worker; exit 1 if any is down (for container health checks)."

    def handle(self, *args, **options):
        healthy, checks = run_checks()
        self.stdout.write(json.dumps(checks))
        if not healthy:
            raise CommandError("unhealthy: " + ", ".join(name for name, c in checks.items() if not c["ok"]))
