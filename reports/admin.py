"""Read-only: sign-offs are evidence and jobs are bookkeeping; both change only through reports.services."""

from django.contrib import admin

from reports.models import ReportJob, SignOff


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "role", "signer_name", "outcome", "signed_at"]
    list_filter = ["outcome"]
    search_fields = ["deployment__name", "signer_name", "statement"]


@admin.register(ReportJob)
class ReportJobAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "deployment",
        "version",
        "requested_by",
        "paper",
        "state",
        "progress",
        "pages",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state", "paper"]
    search_fields = ["deployment__name", "sha256", "final_hash"]
