from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("<int:pk>/", views.report_page, name="deployment"),
    path("<int:pk>/pdf/", views.request_pdf, name="request_pdf"),
    path("<int:pk>/jobs/<int:job_pk>/", views.job_status, name="job"),
    path("<int:pk>/jobs/<int:job_pk>/download/", views.job_download, name="download"),
    path("<int:pk>/report.md", views.export, {"fmt": "md"}, name="markdown"),
    path("<int:pk>/report.json", views.export, {"fmt": "json"}, name="json"),
    path("<int:pk>/sign-off/", views.sign_off, name="sign_off"),
]
