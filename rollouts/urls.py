from django.urls import path

from rollouts import views

app_name = "rollouts"

urlpatterns = [
    path("deployments/<int:pk>/steps/<int:step_pk>/run/", views.start, name="start"),
    path("deployments/<int:pk>/runs/<int:run_pk>/cancel/", views.cancel, name="cancel"),
    path("deployments/<int:pk>/runs/<int:run_pk>/log.txt", views.log_download, name="log"),
]
