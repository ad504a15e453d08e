from django.urls import path

from approvals import api, views

app_name = "approvals"

urlpatterns = [
    path("deployments/<int:pk>/approvals/<int:approval_pk>/give/", views.give, name="give"),
    path("deployments/<int:pk>/approvals/<int:approval_pk>/withdraw/", views.withdraw, name="withdraw"),
    path("deployments/<int:pk>/gates/<int:gate_pk>/vote/", views.vote, name="vote"),
    path("deployments/<int:pk>/gates/<int:gate_pk>/close/", views.close, name="close"),
    path("deployments/<int:pk>/gates/<int:gate_pk>/", views.gate_settings, name="gate"),
    path("deployments/<int:pk>/gates/new/", views.gate_new, name="gate_new"),
    path("deployments/<int:pk>/tokens/", views.tokens, name="tokens"),
    # Token-authenticated JSON API for CI pipelines.
    path("api/v1/deployments/<int:pk>/gates/", api.gates, name="api_gates"),
    path("api/v1/deployments/<int:pk>/gates/<int:gate_pk>/", api.gate, name="api_gate"),
    path("api/v1/deployments/<int:pk>/items/<int:item_pk>/done/", api.item_done, name="api_item_done"),
]
