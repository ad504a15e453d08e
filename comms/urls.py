from django.urls import path

from comms import views

app_name = "comms"

urlpatterns = [
    path("deployments/<int:pk>/comms/", views.page, name="page"),
    path("deployments/<int:pk>/comms/channels/", views.channel_save, name="channel_save"),
    path("deployments/<int:pk>/comms/templates/", views.template_save, name="template_save"),
    path("deployments/<int:pk>/comms/templates/<int:template_pk>/preview/", views.template_preview, name="preview"),
    path("deployments/<int:pk>/comms/templates/<int:template_pk>/send/", views.template_send, name="send"),
    path("deployments/<int:pk>/comms/templates/<int:template_pk>/schedule/", views.template_schedule, name="schedule"),
    path("deployments/<int:pk>/comms/templates/<int:template_pk>/delete/", views.template_delete, name="delete"),
    path("deployments/<int:pk>/comms/scheduled/<int:scheduled_pk>/cancel/", views.scheduled_cancel, name="cancel_scheduled"),
    path("deployments/<int:pk>/comms/status-page/", views.status_page_action, name="status_page_action"),
    # Public, no login: the token is the only key.
    path("status/<str:token>/", views.status_page, name="status_page"),
]
