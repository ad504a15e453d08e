from django.contrib import admin

from comms.models import WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Chat and paging webhooks are the admins' business: a war room's channel only names one."""

    list_display = ("name", "description", "url", "secret_env")
    search_fields = ("name",)
