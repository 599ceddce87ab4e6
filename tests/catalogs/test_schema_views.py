"""The field and selection screens: Braze's rules inline, confirmation by name, the preview,
and what depends on a field before it is deleted (the reviewer sees it too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from catalogs.models import Catalog, CatalogSelection
from catalogs.schema_rules import MESSAGES
from console.changes.models import ChangeRequest
from console.roles import Role
from templates_app.models import ContentVersion
from tests.factories import CatalogFactory, catalog_item_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def shoes() -> Catalog:
    catalog = cast(Catalog, CatalogFactory(name="shoes"))
    for n, price in enumerate((3, 30, 8)):
        catalog_item_create(catalog, f"sku-{n}", name=f"Shoe {n}", price=price)
    return catalog


@pytest.fixture
def editor_client(client_for: Callable[[Role], Client]) -> Client:
    return client_for(Role.EDITOR)


def test_adding_a_field_the_catalog_has_is_refused_inline_in_brazes_words(
    shoes: Catalog, editor_client: Client
) -> None:
    url = reverse("catalogs:field_add", args=["shoes"])

    response = editor_client.post(url, {"name_1": "price", "type_1": "number"})

    assert response.status_code == 200
    assert escape(MESSAGES["field-already-exists"]) in response.content.decode()
    assert not ChangeRequest.objects.exists()
    response = editor_client.post(url, {"name_1": "bad name", "type_1": "number"})
    assert escape(MESSAGES["invalid-field-names"]) in response.content.decode()


def test_adding_a_valid_field_becomes_a_change_request(
    shoes: Catalog, editor_client: Client
) -> None:
    url = reverse("catalogs:field_add", args=["shoes"])

    response = editor_client.post(url, {"name_1": "colour", "type_1": "string"})

    assert response.status_code == 302
    cr = ChangeRequest.objects.get()
    assert (cr.resource_type, cr.identifier, cr.payload) == (
        "catalog_field",
        "shoes/colour",
        {"name": "colour", "type": "string"},
    )


def test_several_fields_are_proposed_at_once_each_as_its_own_change_request(
    shoes: Catalog, editor_client: Client
) -> None:
    url = reverse("catalogs:field_add", args=["shoes"])

    response = editor_client.post(
        url,
        {"name_1": "colour", "type_1": "string", "name_3": "restocked_at", "type_3": "time"},
    )

    assert response.status_code == 302
    assert sorted(ChangeRequest.objects.values_list("identifier", "payload__type")) == [
        ("shoes/colour", "string"),
        ("shoes/restocked_at", "time"),
    ]


def test_fields_added_together_are_checked_together_and_nothing_is_proposed_on_an_error(
    shoes: Catalog, editor_client: Client
) -> None:
    url = reverse("catalogs:field_add", args=["shoes"])

    twice = editor_client.post(
        url, {"name_1": "colour", "type_1": "string", "name_2": "colour", "type_2": "number"}
    )
    untyped = editor_client.post(url, {"name_1": "colour", "type_1": "string", "name_2": "size"})

    assert escape(MESSAGES["field-names-not-unique"]) in twice.content.decode()
    assert "Choose the field&#x27;s type." in untyped.content.decode()
    assert not ChangeRequest.objects.exists()


def test_deleting_a_field_needs_its_name_typed_and_shows_what_depends_on_it(
    shoes: Catalog, editor_client: Client
) -> None:
    ContentVersion.objects.create(
        resource_type="email_template",
        braze_id="t1",
        version=1,
        name="Price drop",
        snapshot={"body": "{% catalog_items shoes sku-0 %}{{ items[0].price }}"},
        digest="d",
        source="synced",
    )
    url = reverse("catalogs:field_delete", args=["shoes", "price"])

    page = editor_client.get(url).content.decode()
    assert "Price drop" in page
    assert "3 mirrored items" in page
    assert editor_client.post(url, {"confirm_name": "pric"}).status_code == 200
    assert not ChangeRequest.objects.exists()

    assert editor_client.post(url, {"confirm_name": "price"}).status_code == 302
    cr = ChangeRequest.objects.get()
    assert cr.base_snapshot == {"name": "price", "type": "number"}
    review = editor_client.get(cr.get_absolute_url()).content.decode()
    assert "Email template Price drop reads it in its Liquid." in review


def test_a_field_a_selection_uses_is_refused_with_brazes_wording(
    shoes: Catalog, editor_client: Client
) -> None:
    CatalogSelection.objects.create(
        catalog=shoes,
        name="cheap",
        definition={"filters": [{"field": "price", "operator": "less than", "value": 10}]},
    )
    url = reverse("catalogs:field_delete", args=["shoes", "price"])

    response = editor_client.post(url, {"confirm_name": "price"})

    assert escape(MESSAGES["field-referenced-by-selection"]) in response.content.decode()
    assert not ChangeRequest.objects.exists()


def _selection_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "cheap",
        "results_limit": "10",
        "sort_field": "price",
        "sort_order": "asc",
        "filter_0_field": "price",
        "filter_0_operator": "less than",
        "filter_0_value": "10",
    }
    return {**data, **overrides}


def test_the_live_preview_shows_the_items_the_selection_would_return(
    shoes: Catalog, editor_client: Client
) -> None:
    url = reverse("catalogs:selection_create", args=["shoes"])

    response = editor_client.post(
        url, _selection_form(), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="preview"
    )

    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="preview"')
    assert fragment.index("sku-0") < fragment.index("sku-2")
    assert "sku-1" not in fragment
    assert not ChangeRequest.objects.exists()


def test_a_selection_braze_would_refuse_is_refused_inline(
    shoes: Catalog, editor_client: Client
) -> None:
    url = reverse("catalogs:selection_create", args=["shoes"])

    response = editor_client.post(url, _selection_form(filter_0_operator="before", propose="1"))

    assert escape(MESSAGES["selection-has-invalid-filter"]) in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_proposing_a_selection_and_deleting_one(shoes: Catalog, editor_client: Client) -> None:
    url = reverse("catalogs:selection_create", args=["shoes"])

    assert editor_client.post(url, _selection_form(propose="1")).status_code == 302
    cr = ChangeRequest.objects.get()
    assert cr.payload["filters"] == [{"field": "price", "operator": "less than", "value": 10}]

    CatalogSelection.objects.create(catalog=shoes, name="dear", definition={"filters": []})
    delete_url = reverse("catalogs:selection_delete", args=["shoes", "dear"])
    assert editor_client.post(delete_url, {"confirm_name": "dear"}).status_code == 302
    assert ChangeRequest.objects.filter(resource_type="catalog_selection", action="delete").exists()


def test_item_forms_filters_and_columns_follow_the_mirrors_schema_at_once(
    shoes: Catalog, editor_client: Client
) -> None:
    from catalogs.schema_services import catalog_field_mirror_write

    catalog_field_mirror_write(
        catalog_name="shoes", action="create", field={"name": "colour", "type": "string"}
    )
    new_item = reverse("catalogs:item_create", args=["shoes"])
    items = reverse("catalogs:items", args=["shoes"])
    assert "colour (string)" in editor_client.get(new_item).content.decode()
    assert "colour" in editor_client.get(items).content.decode()
    assert ">price<" in editor_client.get(items).content.decode()

    catalog_field_mirror_write(
        catalog_name="shoes", action="delete", field={"name": "price", "type": "number"}
    )
    assert "price (number)" not in editor_client.get(new_item).content.decode()
    assert ">price<" not in editor_client.get(items).content.decode()
