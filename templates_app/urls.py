from django.urls import path

from templates_app import views

app_name = "templates_app"
urlpatterns = [
    path("templates/", views.email_template_list, name="email_templates"),
    path("templates/new/", views.email_template_create, name="email_template_create"),
    path("templates/<str:email_template_id>/", views.email_template_detail,
         name="email_template_detail"),
    path("templates/<str:email_template_id>/edit/", views.email_template_edit,
         name="email_template_edit"),
    path("blocks/", views.content_block_list, name="content_blocks"),
    path("blocks/new/", views.content_block_create, name="content_block_create"),
    path("blocks/<str:content_block_id>/", views.content_block_detail,
         name="content_block_detail"),
    path("blocks/<str:content_block_id>/edit/", views.content_block_edit,
         name="content_block_edit"),
    path("preference-centers/", views.preference_center_list, name="preference_centers"),
    path("preference-centers/new/", views.preference_center_create,
         name="preference_center_create"),
    path("preference-centers/<str:preference_center_id>/", views.preference_center_detail,
         name="preference_center_detail"),
    path("preference-centers/<str:preference_center_id>/edit/", views.preference_center_edit,
         name="preference_center_edit"),
    path("preference-centers/<str:preference_center_id>/user-url/",
         views.preference_center_user_url, name="preference_center_user_url"),
    path("history/<str:resource_type>/<str:braze_id>/", views.history, name="history"),
    path("history/<str:resource_type>/<str:braze_id>/diff/", views.version_diff,
         name="version_diff"),
    path("history/<str:resource_type>/<str:braze_id>/<int:version>/restore/",
         views.version_restore, name="version_restore"),
    path("preview/live/", views.preview_live, name="preview_live"),
    path("preview/<str:token>/", views.preview, name="preview"),
    path("changes/<int:pk>/preview/", views.change_preview, name="change_preview"),
]  # fmt: skip
