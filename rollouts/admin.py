from django.contrib import admin

from rollouts.models import MetricSource, Router, Target, TargetBinding, TaskRun


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    """Targets are the admins' business: war-room users only run what is defined here."""

    list_display = ("name", "description", "base_url", "database_url_env", "database_url_file")
    search_fields = ("name",)


@admin.register(TargetBinding)
class TargetBindingAdmin(admin.ModelAdmin):
    list_display = ("deployment", "target")


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "deployment", "action", "target", "state", "started_at", "finished_at")
    list_filter = ("state", "action")
    readonly_fields = [f.name for f in TaskRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Router)
class RouterAdmin(admin.ModelAdmin):
    """Routers are the admins' business too: a rollout plan only names one."""

    list_display = ("name", "kind", "description", "upstream_file", "url")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(MetricSource)
class MetricSourceAdmin(admin.ModelAdmin):
    """Where metric gates read numbers; a plan gives only the query or JSON path."""

    list_display = ("name", "kind", "url", "description")
    list_filter = ("kind",)
    search_fields = ("name",)
