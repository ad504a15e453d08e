from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and reviews"

    def ready(self):
        # Scheduled messages that wait for "no open SEV1 / no open incident" ask this app.
        from comms import conditions
        from comms.models import SendCondition
        from incidents.models import Severity
        from incidents.services import open_incidents_in_words

        conditions.provide(SendCondition.NO_OPEN_SEV1, lambda d: open_incidents_in_words(d, severity=Severity.SEV1))
        conditions.provide(SendCondition.NO_OPEN_INCIDENT, open_incidents_in_words)

        # A decided rollback vote updates the incident it belongs to, on every screen.
        from approvals.hooks import on_gate_decided
        from incidents import services

        on_gate_decided(services.rollback_vote_decided)
        # A contact added while an incident escalates joins it at once.
        from deployments import hooks

        hooks.on_contacts_changed(services.contacts_changed)

        # Worst news first: the incidents panel heads the war room.
        from deployments import panels as warroom
        from incidents import panels

        warroom.provide("incidents", load=panels.load_incidents, template=panels.TEMPLATE, slot=warroom.MAIN, position=10)

        # The PDF/JSON report has "incidents" and "review" slots; fill them when the reports app is here.
        try:
            from reports.sections import provide
        except ImportError:  # pragma: no cover - reports not installed
            return
        from incidents.review import incidents_section, review_section

        provide("incidents", incidents_section)
        provide("review", review_section)
