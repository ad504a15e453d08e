from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and sign-offs"

    def ready(self):
        from deployments import checkpoints, hooks
        from reports.signing import checkpoint_key
        from reports.signoffs import signed_role_ids

        # The event chain's checkpoints are signed with the same key as the reports.
        checkpoints.use_signing_key(checkpoint_key)
        # The phone view lists the report sign-offs a person still owes.
        hooks.report_sign_offs(signed_role_ids)
