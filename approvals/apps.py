from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"

    def ready(self):
        from approvals import panels, services
        from approvals.report_section import gates_section
        from deployments import hooks
        from deployments import panels as warroom
        from deployments.actors import SystemKind
        from reports.sections import provide

        provide("gates", gates_section)
        # Its buttons (approve, withdraw) depend on the state: a state change pushes it too.
        warroom.provide(
            "approvals", load=panels.load_approvals, template=panels.TEMPLATE, slot=warroom.MAIN, position=20, follows_state=True
        )
        hooks.guard_start(services.why_not_ready_to_start)
        hooks.on_item_changed(services.refresh_gates)  # votes cast against the old checklist become stale
        hooks.claim_lines(SystemKind.APPROVALS, services.is_approval_line)
        hooks.report_open_work(services.open_gates)
        hooks.guard_resume(services.no_go_needs_reason)
        hooks.on_finished(services.cancel_open_gates)
        hooks.on_created(services.setup_from_runbook)
        hooks.place_events_in_steps(services.gate_event_places)
