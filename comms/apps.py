from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "comms"
    verbose_name = "Communications"

    def ready(self):
        from comms import panels, services
        from deployments import hooks
        from deployments import panels as warroom

        warroom.provide(
            "comms", load=panels.load_comms, template=panels.TEMPLATE, partial="panel", slot=warroom.SIDE, position=10
        )

        # A finished deployment cancels at once the scheduled messages it made impossible;
        # moving T-0 asks the lead first about the messages it would send at once.
        hooks.on_finished(services.cancel_impossible_sends)
        hooks.report_due_at_once(services.due_at_once)
