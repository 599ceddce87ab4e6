from django.contrib.auth import views as auth_views
from django.urls import include, path

from console import views

auth_patterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]

change_patterns = ([path("", views.change_list, name="list")], "changes")
audit_patterns = ([path("", views.audit_list, name="list")], "audit")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include(auth_patterns)),
    path("changes/", include(change_patterns)),
    path("audit/", include(audit_patterns)),
    path("catalogs/", include("catalogs.urls")),
    path("content/", include("templates_app.urls")),
    path("users/", include("users_admin.urls")),
]
