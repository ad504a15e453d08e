from django.core.management.base import BaseCommand, CommandError

from reports.signing import SigningIdentityError, ensure_signing_identity


class Command(BaseCommand):
    help = "Make sure Warroom can sign reports: load the configured identity, or generate a self-signed one."

    def handle(self, *args, **options):
        try:
            identity, how = ensure_signing_identity()
        except SigningIdentityError as exc:
            raise CommandError(str(exc)) from None
        said = {
            "configured": "Using the configured signing identity",
            "existing": "Using the self-signed signing identity generated earlier",
            "generated": "Generated a self-signed signing identity (configure WARROOM_SIGNING_P12 or "
            "WARROOM_SIGNING_KEY/WARROOM_SIGNING_CERT for production)",
        }[how]
        self.stdout.write(self.style.SUCCESS(said))
        self.stdout.write(f"  source:      {identity.source}")
        self.stdout.write(f"  subject:     {identity.subject}")
        self.stdout.write(f"  SHA-256:     {identity.fingerprint}")
        self.stdout.write(f"  valid until: {identity.not_after:%Y-%m-%d}")
