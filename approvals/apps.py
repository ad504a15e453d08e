from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self):
        from approvals.report_section import gates_section
        from reports.sections import provide

        provide("gates", gates_section)
