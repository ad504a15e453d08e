from django.urls import path

from incidents import views

app_name = "incidents"

urlpatterns = [
    path("deployments/<int:pk>/incidents/", views.raise_incident, name="raise"),
    path("deployments/<int:pk>/incidents/<int:incident_pk>/update/", views.update, name="update"),
    path("deployments/<int:pk>/incidents/<int:incident_pk>/ack/", views.acknowledge, name="ack"),
    path("deployments/<int:pk>/review/", views.review, name="review"),
    path("deployments/<int:pk>/review/actions/", views.action_add, name="action_add"),
    path("deployments/<int:pk>/review/actions/<int:item_pk>/", views.action_status, name="action_status"),
]
