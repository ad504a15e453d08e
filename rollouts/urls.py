from django.conf import settings
from django.urls import path

from rollouts import demo, views

app_name = "rollouts"

urlpatterns = [
    path("deployments/<int:pk>/steps/<int:step_pk>/run/", views.start, name="start"),
    path("deployments/<int:pk>/runs/<int:run_pk>/cancel/", views.cancel, name="cancel"),
    path("deployments/<int:pk>/runs/<int:run_pk>/log.txt", views.log_download, name="log"),
    path("deployments/<int:pk>/rollout/plan/", views.rollout_plan, name="plan"),
    path("runbooks/versions/<int:pk>/rollout/", views.runbook_rollout, name="runbook_plan"),
    path("deployments/<int:pk>/rollout/gates/<int:gate_pk>/reading/", views.rollout_reading, name="reading"),
    path("deployments/<int:pk>/rollout/<slug:verb>/", views.rollout_action, name="rollout"),
]

demo_urlpatterns = [
    path("demo/metrics", demo.metrics, name="demo_metrics"),
    path("demo/health", demo.set_health, name="demo_health"),
    path("demo/router", demo.router, name="demo_router"),
]

# The demo's pretend production exists only in the demo (WARROOM_DEMO, on under `make run`).
if settings.WARROOM_DEMO:
    urlpatterns += demo_urlpatterns
