from django.contrib import admin

from checklists.models import Runbook, RunbookVersion


class VersionInline(admin.TabularInline):
    model = RunbookVersion
    fields = ("number", "title", "source_filename", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Runbook)
class RunbookAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [VersionInline]
