from django.urls import path

from catalogs import schema_views, views

app_name = "catalogs"
urlpatterns = [
    # "~" is never part of a catalog name or item id, so these paths cannot shadow one.
    path("", views.catalog_list, name="list"),
    path("~refresh/", views.catalog_list_refresh, name="list_refresh"),
    path("~new/", views.catalog_create, name="create"),
    path("<str:name>/", views.catalog_detail, name="detail"),
    path("<str:name>/refresh/", views.catalog_refresh, name="refresh"),
    path("<str:name>/delete/", views.catalog_delete, name="delete"),
    path("<str:name>/fields/~new/", schema_views.field_add, name="field_add"),
    path(
        "<str:name>/fields/<str:field_name>/delete/",
        schema_views.field_delete,
        name="field_delete",
    ),
    path("<str:name>/selections/~new/", schema_views.selection_create, name="selection_create"),
    path(
        "<str:name>/selections/<str:selection_name>/delete/",
        schema_views.selection_delete,
        name="selection_delete",
    ),
    path("<str:name>/items/", views.item_list, name="items"),
    path("<str:name>/items/export.csv", views.item_export, name="item_export"),
    path("<str:name>/items/~new/", views.item_create, name="item_create"),
    path("<str:name>/items/<str:item_id>/", views.item_detail, name="item_detail"),
    path("<str:name>/items/<str:item_id>/edit/", views.item_edit, name="item_edit"),
    path("<str:name>/items/<str:item_id>/delete/", views.item_delete, name="item_delete"),
]
