from django.urls import path

from catalogs import views

app_name = "catalogs"
urlpatterns = [
    path("", views.catalog_list, name="list"),
]
