from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from deployments import views as deployment_views
from warroom import views

urlpatterns = [
    path("", deployment_views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    # Pages name their icon (<link rel=icon>); this answers browsers and tools that ask the root anyway.
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("deployments/", include("deployments.urls")),
    path("runbooks/", include("checklists.urls")),
    path("reports/", include("reports.urls")),
    path("", include("approvals.urls")),
    path("", include("rollouts.urls")),
    path("", include("comms.urls")),
    path("", include("incidents.urls")),
    path("admin/", admin.site.urls),
]
