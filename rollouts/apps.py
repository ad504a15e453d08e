from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"

    def ready(self):
        from approvals.hooks import on_gate_decided
        from checklists.hooks import version_section
        from deployments import hooks
        from reports.sections import provide
        from rollouts import controller, runbook_plan, runs
        from rollouts.report_section import rollout_section, task_runs_section

        provide("task_runs", task_runs_section)
        provide("rollouts", rollout_section)
        on_gate_decided(controller.take_traffic_back_on_no_go)
        hooks.report_open_work(controller.open_rollout)
        hooks.on_finished(controller.settle_rollout)
        hooks.on_created(controller.setup_from_runbook)
        version_section(runbook_plan.version_section)
        hooks.place_events_in_steps(runs.event_places)
