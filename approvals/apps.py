from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self):
        from approvals import services
        from approvals.report_section import gates_section
        from deployments import hooks
        from deployments.actors import SystemKind
        from reports.sections import provide

        provide("gates", gates_section)
        hooks.claim_lines(SystemKind.APPROVALS, services.is_approval_line)
        hooks.report_open_work(services.open_gates)
        hooks.guard_resume(services.no_go_needs_reason)
        hooks.on_finished(services.cancel_open_gates)
        hooks.on_created(services.setup_from_runbook)
        hooks.place_events_in_steps(services.gate_event_places)
