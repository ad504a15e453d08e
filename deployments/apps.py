from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self):
        from deployments.permissions import ensure_default_groups

        post_migrate.connect(ensure_default_groups, sender=self, dispatch_uid="warroom-default-groups")
