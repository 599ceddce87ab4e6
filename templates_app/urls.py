from django.urls import path

from templates_app import views

app_name = "templates_app"
urlpatterns = [
    path("templates/", views.email_template_list, name="email_templates"),
    path("blocks/", views.content_block_list, name="content_blocks"),
    path("preference-centers/", views.preference_center_list, name="preference_centers"),
]
