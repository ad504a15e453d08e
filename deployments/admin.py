from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from deployments.models import Deployment, Event


@admin.register(Deployment)
class DeploymentAdmin(GuardedModelAdmin):
    """Read-only: deployments change through the war room, where every change is recorded."""

    list_display = ("name", "service", "version_label", "environment", "state", "planned_t0")
    list_filter = ("state", "environment", "service")
    search_fields = ("name", "service", "version_label")
    readonly_fields = [f.name for f in Deployment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("deployment", "seq", "created_at", "actor_label", "action", "summary")
    list_filter = ("action",)
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
