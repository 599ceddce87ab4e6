from collections.abc import Callable
from typing import cast

from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponseBase
from django.urls import URLPattern, URLResolver, include, path

from console import views
from console.access import require_login
from console.audit import views as audit_views
from console.changes import views as change_views
from console.metrics import views as metrics_views
from console.notifications import views as notification_views


def _signed_in(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Django's view behind require_login as well as its own check: an htmx request from a
    signed-out page is told to load the login page whole (HX-Redirect), as on every screen."""
    return require_login()(cast(Callable[..., HttpResponse], view))


auth_patterns: list[URLPattern | URLResolver] = [
    path("login/", views.SignInView.as_view(), name="login"),
    # logout/: ends the provider's session too, for a session signed in through it.
    path("", include("sso.signout_urls")),
    path("sso/", include("sso.urls")),
    path("password/", _signed_in(auth_views.PasswordChangeView.as_view()), name="password_change"),
    path(
        "password/done/",
        _signed_in(auth_views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
]

change_patterns = (
    [
        path("", change_views.change_list, name="list"),
        path("<int:pk>/", change_views.change_detail, name="detail"),
        path("<int:pk>/act", change_views.change_act, name="act"),
        path("policy/", change_views.approval_policy, name="policy"),
    ],
    "changes",
)
audit_patterns = (
    [
        path("", audit_views.audit_list, name="list"),
        path("<int:seq>/", audit_views.audit_detail, name="detail"),
        path("export", audit_views.audit_export, name="export"),
        path("integrity/", audit_views.audit_integrity, name="integrity"),
        path("integrity/verify", audit_views.audit_integrity_verify, name="integrity_verify"),
        path("integrity/checkpoint", audit_views.audit_checkpoint_issue, name="checkpoint_issue"),
        path("erasure/", audit_views.audit_erasure, name="erasure"),
        path("erasure/erase", audit_views.audit_erasure_confirm, name="erasure_confirm"),
    ],
    "audit",
)
notification_patterns = (
    [
        path("", notification_views.notification_preferences, name="preferences"),
        path("webhook/", notification_views.webhook_deliveries, name="deliveries"),
    ],
    "notifications",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("home/seen", views.home_seen, name="home_seen"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("accounts/", include(auth_patterns)),
    path("accounts/", include("mfa.urls")),
    path("changes/", include(change_patterns)),
    path("audit/", include(audit_patterns)),
    path("notifications/", include(notification_patterns)),
    path("catalogs/<str:name>/bulk/", include("catalog_bulk.urls")),
    path("catalogs/", include("catalogs.urls")),
    path("content/", include("templates_app.urls")),
    path("content/", include("bundles.urls")),
    path("users/", include("users_admin.urls")),
]
