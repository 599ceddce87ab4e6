from django.urls import path

from users_admin import views

app_name = "users_admin"
urlpatterns = [
    path("", views.index, name="index"),
    path("console/", views.console_users, name="console_users"),
    path("console/new/", views.user_create, name="user_create"),
    path("console/<int:pk>/", views.user_detail, name="user_detail"),
    path(
        "console/<int:pk>/workspace-roles/",
        views.user_workspace_roles,
        name="user_workspace_roles",
    ),
    path("welcome/<uidb64>/<token>/", views.set_password, name="set_password"),
    path("dashboard/", views.dashboard_users, name="dashboard_users"),
    path("dashboard/new/", views.dashboard_user_create, name="dashboard_user_create"),
    path("dashboard/<str:user_id>/", views.dashboard_user_detail, name="dashboard_user_detail"),
    path("dashboard/<str:user_id>/edit/", views.dashboard_user_edit, name="dashboard_user_edit"),
    path(
        "dashboard/<str:user_id>/remove/",
        views.dashboard_user_remove,
        name="dashboard_user_remove",
    ),
    path("access-review/", views.access_review, name="access_review"),
    path("access-review/export/", views.access_review_export, name="access_review_export"),
]
