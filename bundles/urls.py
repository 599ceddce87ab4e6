from django.urls import path

from bundles import promotion_views, views

app_name = "bundles"
urlpatterns = [
    path("files/", views.content_files, name="files"),
    path("files/export.zip", views.content_files_export, name="export"),
    path("files/import", views.content_files_import, name="import"),
    path("bundles/<int:pk>/", views.bundle_review, name="review"),
    path("promote/", promotion_views.promotion, name="promote"),
]
