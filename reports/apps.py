from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and sign-offs"

    def ready(self):
        from deployments import checkpoints
        from reports.signing import checkpoint_key

        # The event chain's checkpoints are signed with the same key as the reports.
        checkpoints.use_signing_key(checkpoint_key)
