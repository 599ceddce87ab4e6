"""Sign-out at accounts/logout/, named `logout` outside the `sso` namespace as Django's auth
views expect; included by the root URLconf."""

from django.urls import path

from sso import views

urlpatterns = [
    path("logout/", views.SignOutView.as_view(), name="logout"),
]
