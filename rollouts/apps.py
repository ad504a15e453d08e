from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"

    def ready(self):
        from approvals.hooks import on_gate_decided
        from checklists import hooks as runbook_hooks
        from deployments import hooks
        from deployments import panels as warroom
        from reports.sections import provide
        from rollouts import actions, controller, panels, runbook_plan, runs
        from rollouts.report_section import rollout_section, task_runs_section

        # A runbook's ```warroom blocks name the work this app runs: it judges them at import.
        runbook_hooks.validate_actions_with(actions.validate_action)
        provide("task_runs", task_runs_section)
        provide("rollouts", rollout_section)
        on_gate_decided(controller.take_traffic_back_on_no_go)
        hooks.report_open_work(controller.open_rollout)
        hooks.on_finished(controller.settle_rollout)
        hooks.on_created(controller.setup_from_runbook)
        runbook_hooks.version_section(runbook_plan.version_section)
        hooks.place_events_in_steps(runs.event_places)
        warroom.provide(
            "rollout",
            load=panels.load_rollout,
            template=panels.TEMPLATE,
            slot=warroom.MAIN,
            position=30,
            tv=panels.attach_sparklines,
        )
        # Under each step with an action: its run button and its last runs.
        warroom.provide(
            "runs", load=panels.runs_by_step, template=panels.TEMPLATE, partial="step-runs", slot=warroom.STEP, position=10
        )
