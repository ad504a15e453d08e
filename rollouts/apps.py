from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"

    def ready(self):
        from reports.sections import provide
        from rollouts.report_section import rollout_section, task_runs_section

        provide("task_runs", task_runs_section)
        provide("rollouts", rollout_section)
