from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents and reviews"

    def ready(self):
        # The PDF/JSON report has "incidents" and "review" slots; fill them when the reports app is here.
        try:
            from reports.sections import provide
        except ImportError:  # pragma: no cover - reports not installed
            return
        from incidents.review import incidents_section, review_section

        provide("incidents", incidents_section)
        provide("review", review_section)
