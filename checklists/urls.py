from django.urls import path

from checklists import views

app_name = "checklists"

urlpatterns = [
    path("", views.runbook_list, name="list"),
    path("import/", views.runbook_import, name="import"),
    path("<int:pk>/", views.runbook_detail, name="runbook"),
    path("versions/<int:pk>/", views.version_detail, name="version"),
    path("versions/<int:pk>/export/", views.version_export, name="export"),
    path("versions/<int:pk>/rename/", views.version_rename, name="version_rename"),
    path("versions/<int:pk>/phases/", views.phase_add, name="phase_add"),
    path("phases/<int:pk>/rename/", views.phase_rename, name="phase_rename"),
    path("phases/<int:pk>/move/", views.phase_move, name="phase_move"),
    path("phases/<int:pk>/remove/", views.phase_remove, name="phase_remove"),
    path("phases/<int:pk>/steps/", views.step_add, name="step_add"),
    path("steps/<int:pk>/editor/", views.step_editor, name="step_editor"),
    path("steps/<int:pk>/rename/", views.step_rename, name="step_rename"),
    path("steps/<int:pk>/move/", views.step_move, name="step_move"),
    path("steps/<int:pk>/remove/", views.step_remove, name="step_remove"),
    path("steps/<int:pk>/role/", views.step_role, name="step_role"),
    path("steps/<int:pk>/timing/", views.step_timing, name="step_timing"),
    path("steps/<int:pk>/gate/", views.step_gate, name="step_gate"),
    path("steps/<int:pk>/items/", views.item_add, name="item_add"),
    path("items/<int:pk>/move/", views.item_move, name="item_move"),
    path("items/<int:pk>/remove/", views.item_remove, name="item_remove"),
]
