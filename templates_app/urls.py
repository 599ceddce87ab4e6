from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import URLPattern, path

from templates_app import views
from templates_app.kinds import CONTENT_BLOCKS, EMAIL_TEMPLATES, PREFERENCE_CENTERS, ContentKind


def _content(kind: ContentKind, detail: Callable[..., HttpResponseBase]) -> list[URLPattern]:
    """A kind's list, new, detail and edit screens: the shared list and form, its own detail."""
    at, key, spec = kind.path, kind.key, {"kind": kind}
    item = f"{at}/<str:{kind.id_param}>"
    return [
        path(f"{at}/", views.content_list, spec, name=kind.list_name),
        path(f"{at}/new/", views.content_create, spec, name=f"{key}_create"),
        path(f"{item}/", detail, name=f"{key}_detail"),
        path(f"{item}/edit/", views.content_edit, spec, name=f"{key}_edit"),
    ]


app_name = "templates_app"
urlpatterns = [
    *_content(EMAIL_TEMPLATES, views.email_template_detail),
    *_content(CONTENT_BLOCKS, views.content_block_detail),
    *_content(PREFERENCE_CENTERS, views.preference_center_detail),
    path(
        "preference-centers/<str:preference_center_id>/user-url/",
        views.preference_center_user_url,
        name="preference_center_user_url",
    ),
    path("search/", views.content_search, name="search"),
    path("history/<str:resource_type>/<str:braze_id>/", views.history, name="history"),
    path(
        "history/<str:resource_type>/<str:braze_id>/diff/",
        views.version_diff,
        name="version_diff",
    ),
    path(
        "history/<str:resource_type>/<str:braze_id>/<int:version>/restore/",
        views.version_restore,
        name="version_restore",
    ),
    path("preview/live/", views.preview_live, name="preview_live"),
    path("preview/as/", views.preview_as, name="preview_as"),
    path(
        "preview/as/<str:resource_type>/<str:braze_id>/",
        views.preview_as_item,
        name="preview_as_item",
    ),
    path(
        "preview/as/<str:resource_type>/<str:braze_id>/braze-user/",
        views.preview_as_braze_user,
        name="preview_as_braze_user",
    ),
    path("preview-profiles/", views.preview_profile_list, name="preview_profiles"),
    path("preview-settings/", views.preview_settings, name="preview_settings"),
    path("preview-profiles/new/", views.preview_profile_create, name="preview_profile_create"),
    path("preview-profiles/<int:pk>/", views.preview_profile_edit, name="preview_profile_edit"),
    path(
        "preview-profiles/<int:pk>/delete/",
        views.preview_profile_delete,
        name="preview_profile_delete",
    ),
    path("preview/<str:token>/", views.preview, name="preview"),
    path("changes/<int:pk>/preview/", views.change_preview, name="change_preview"),
    path(
        "changes/<int:pk>/preview/braze-user/",
        views.change_preview_braze_user,
        name="change_preview_braze_user",
    ),
]
