"""What depends on a catalog field or selection: found by parsing Liquid, not by substring."""

from __future__ import annotations

from typing import cast

import pytest

from catalogs.models import Catalog, CatalogItem, CatalogSelection
from catalogs.schema_selectors import (
    catalog_content_uses,
    catalog_field_dependents,
    catalog_selection_dependents,
    catalog_selection_preview,
)
from templates_app.liquid import catalog_references
from templates_app.models import ContentVersion
from tests.factories import CatalogFactory

pytestmark = pytest.mark.django_db


def _content(kind: str, braze_id: str, name: str, text: str, version: int = 1) -> None:
    key = "content" if kind == "content_block" else "body"
    ContentVersion.objects.create(
        resource_type=kind,
        braze_id=braze_id,
        version=version,
        name=name,
        snapshot={key: text},
        digest=f"{braze_id}-{version}",
        source="synced",
    )


def test_references_come_from_the_tags_and_the_items_they_assign() -> None:
    refs = catalog_references(
        "{% catalog_items shoes sku-1 %}{{ items[0].price }}"
        "{% for shoe in items %}{{ shoe.colour }}{% endfor %}"
        "{% catalog_selection_items shoes cheap %}"
        "<!-- {{ items[0].brand }} --> items[0].size shoes"
    )

    assert refs.catalogs == {"shoes"}
    assert refs.selections == {("shoes", "cheap")}
    assert refs.fields == {"price", "colour"}


def test_a_field_in_prose_or_in_another_catalog_is_no_reference() -> None:
    assert catalog_references("Our shoes have a price: items[0].price").catalogs == frozenset()
    refs = catalog_references("{% catalog_items hats h1 %}{{ items[0].price }}")
    assert refs.catalogs == {"hats"}


def test_field_dependents_list_selections_content_and_items_holding_a_value() -> None:
    catalog = cast(Catalog, CatalogFactory(name="shoes"))
    CatalogItem.objects.create(
        catalog=catalog, item_id="a", data={"price": 3}, mirrored_at="2026-01-01T00:00Z"
    )
    CatalogItem.objects.create(
        catalog=catalog, item_id="b", data={"price": None}, mirrored_at="2026-01-01T00:00Z"
    )
    CatalogItem.objects.create(
        catalog=catalog, item_id="c", data={}, mirrored_at="2026-01-01T00:00Z"
    )
    CatalogSelection.objects.create(
        catalog=catalog,
        name="cheap",
        definition={"filters": [{"field": "price", "operator": "less than", "value": 5}]},
    )
    _content("email_template", "t1", "Welcome", "{% catalog_items shoes a %}{{ items[0].price }}")
    # An older version referenced the field; the newest does not.
    _content("content_block", "b1", "Promo", "{% catalog_items shoes a %}{{ items[0].price }}")
    _content("content_block", "b1", "Promo", "{% catalog_items shoes a %}{{ items[0].name }}", 2)
    _content("content_block", "b2", "Prose", "The price of shoes")

    found = catalog_field_dependents(catalog=catalog, field_name="price")

    assert found.selections == ["cheap"]
    assert [(c.kind, c.name) for c in found.content] == [("Email template", "Welcome")]
    assert found.items_with_value == 1
    assert {c.name for c in catalog_content_uses(catalog=catalog)} == {"Welcome", "Promo"}


def test_selection_dependents_are_the_content_rendering_it() -> None:
    catalog = cast(Catalog, CatalogFactory(name="shoes"))
    _content("content_block", "b1", "Cheap", "{% catalog_selection_items shoes cheap %}{{ items }}")
    _content("content_block", "b2", "Other", "{% catalog_selection_items shoes dear %}")

    found = catalog_selection_dependents(catalog=catalog, selection_name="cheap")

    assert [c.name for c in found.content] == ["Cheap"]


def test_the_preview_evaluates_the_definition_over_the_mirror() -> None:
    catalog = cast(Catalog, CatalogFactory(name="shoes"))
    for item_id, price in (("a", 3), ("b", 30), ("c", 8), ("d", None)):
        CatalogItem.objects.create(
            catalog=catalog, item_id=item_id, data={"price": price}, mirrored_at="2026-01-01T00:00Z"
        )
    definition = {
        "filters": [{"field": "price", "operator": "less than", "value": "10"}],
        "results_limit": 5,
        "sort_field": "price",
        "sort_order": "desc",
    }

    items, truncated = catalog_selection_preview(catalog=catalog, definition=definition)

    assert [i["id"] for i in items] == ["c", "a"]
    assert not truncated
