"""Grant Warroom's application role its (narrow) rights on this database.

Run after every ``migrate``, connected as the owner of the tables (or a superuser):
``make run`` and compose's ``migrate`` service do. Idempotent; without the role it
says so and changes nothing. See warroom/dbroles.py and README ("Database roles").
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from warroom import dbroles


class Command(BaseCommand):
    help = "Grant the application database role SELECT/INSERT/UPDATE/DELETE, and only SELECT/INSERT on append-only tables."

    def add_arguments(self, parser):
        parser.add_argument("--app-role", default=settings.DATABASE_APP_ROLE, help="default: WARROOM_DB_APP_ROLE or warroom_app")

    def handle(self, *args, app_role, **options):
        try:
            with transaction.atomic():
                done = dbroles.apply_grants(connection, app_role)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        for line in done:
            self.stdout.write(line)
