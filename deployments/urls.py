from django.urls import path

from deployments import views

app_name = "deployments"

urlpatterns = [
    path("new/", views.deployment_create, name="create"),
    path("<int:pk>/", views.warroom, name="warroom"),
    path("<int:pk>/board/", views.board, name="board"),
    path("<int:pk>/tv/", views.tv, name="tv"),
    path("<int:pk>/tv/board/", views.tv_board, name="tv_board"),
    path("<int:pk>/me/", views.me, name="me"),
    path("<int:pk>/me/board/", views.me_board, name="me_board"),
    path("<int:pk>/items/<int:item_pk>/", views.item_update, name="item"),
    path("<int:pk>/state/", views.change_state, name="state"),
    path("<int:pk>/t0/", views.reanchor, name="reanchor"),
    path("<int:pk>/people/", views.people, name="people"),
    path("<int:pk>/events/", views.events, name="events"),
    path("<int:pk>/events.csv", views.events_export, {"fmt": "csv"}, name="events_csv"),
    path("<int:pk>/events.json", views.events_export, {"fmt": "json"}, name="events_json"),
]
