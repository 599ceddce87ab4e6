"""The lists as the screens show them: the selectors narrow them, not the views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest

from catalogs.models import Catalog, CatalogSelection
from templates_app import selectors
from templates_app.personalize import Person, Rendered, render_as
from templates_app.selectors import ContentFilters
from tests.factories import CatalogFactory, catalog_item_create
from tests.fixtures.sandbox import SandboxHandle


def test_blocks_are_narrowed_by_name_in_any_case_by_tag_and_by_type(braze: SandboxHandle) -> None:
    def names(q: str = "", tag: str = "", type: str = "") -> set[str]:
        filters = ContentFilters(q=q, tag=tag, type=type)
        return {block.name for block in selectors.content_block_listing(filters=filters).rows}

    assert "email_footer" in names(q="FOOT")
    assert "legal_notice" not in names(q="FOOT")
    assert "legal_notice" in names(tag="legal")
    assert "greeting" not in names(tag="legal")
    assert "greeting" in names(type="text")
    assert "email_footer" not in names(type="text")
    assert names(type="text", tag="legal") <= names(type="text") & names(tag="legal")


def test_the_tag_menu_offers_every_tag_whatever_the_name_or_tag_filter(
    braze: SandboxHandle,
) -> None:
    every_tag = sorted({tag for block in selectors.content_block_rows() for tag in block.tags})
    listing = selectors.content_block_listing(filters=ContentFilters(q="zzz", tag="legal"))
    assert listing.rows == []
    assert every_tag
    assert listing.tags == every_tag


def test_templates_are_narrowed_by_braze_for_the_date_and_the_tags_follow(
    braze: SandboxHandle,
) -> None:
    recent = selectors.email_template_listing(
        filters=ContentFilters(modified_after=datetime(2000, 1, 1, tzinfo=UTC))
    )
    future = selectors.email_template_listing(
        filters=ContentFilters(modified_after=datetime(2099, 1, 1, tzinfo=UTC))
    )
    assert recent.rows
    assert recent.tags
    assert (future.rows, future.tags) == ([], [])
    by_tag = selectors.email_template_listing(filters=ContentFilters(tag="transactional"))
    assert by_tag.rows
    assert all("transactional" in template.tags for template in by_tag.rows)


def test_preference_centers_are_narrowed_by_name_only(braze: SandboxHandle) -> None:
    center = selectors.preference_center_rows()[0]
    listing = selectors.preference_center_listing(
        filters=ContentFilters(q=center.name.upper(), tag="no-such-tag")
    )
    assert center in listing.rows
    assert listing.tags == []


# --- catalog tags in previews read the local mirror ---------------------------------------------


@pytest.fixture
def shoes(db: None) -> Catalog:
    catalog = cast(Catalog, CatalogFactory(name="shoes"))
    catalog_item_create(catalog, "s1", name="Runner", price=80, in_stock=True)
    catalog_item_create(catalog, "s2", name="Trail", price=120, in_stock=True)
    catalog_item_create(catalog, "s3", name="Court", price=60, in_stock=False)
    CatalogSelection.objects.create(
        catalog=catalog,
        name="under_budget",
        definition={
            "external_id": "under_budget",
            "filters": [
                {
                    "field": "price",
                    "operator": "less than",
                    "value": "{{custom_attribute.${budget}}}",
                },
                {"field": "in_stock", "operator": "equals", "value": True},
            ],
            "sort_field": "price",
            "sort_order": "desc",
            "results_limit": 10,
        },
    )
    CatalogSelection.objects.create(catalog=catalog, name="any", definition={"filters": []})
    return catalog


def _render_with_mirror(content: str, budget: int) -> Rendered:
    person = Person("Budget", {"custom_attributes": {"budget": budget}})
    return render_as(content=content, person=person, catalogs=selectors.catalog_source())


def test_catalog_items_read_the_mirrored_items(shoes: Catalog) -> None:
    rendered = _render_with_mirror(
        "{% catalog_items shoes s2 s1 gone %}{% for i in items %}{{ i.id }}={{ i.name }} "
        "{% endfor %}",
        budget=0,
    )

    assert rendered.output == "s2=Trail s1=Runner "
    assert rendered.warnings == (
        'catalog "shoes" has no item gone in the mirror: Braze leaves it out of items',
    )


def test_a_selection_is_evaluated_from_its_definition_with_the_persons_filter_values(
    shoes: Catalog,
) -> None:
    template = (
        "{% catalog_selection_items shoes under_budget %}"
        "{% for i in items %}{{ i.name }} {% endfor %}"
    )

    assert _render_with_mirror(template, budget=100).output == "Runner "
    assert _render_with_mirror(template, budget=200).output == "Trail Runner "
    assert _render_with_mirror(template, budget=10).output == ""


def test_a_selection_without_a_sort_says_braze_orders_it_at_random(shoes: Catalog) -> None:
    rendered = _render_with_mirror(
        "{% catalog_selection_items shoes any %}{{ items.size }}", budget=0
    )

    assert rendered.output == "3"
    assert "Braze returns its items in random order" in rendered.warnings[0]


def test_selections_the_console_did_not_make_and_unmirrored_catalogs_are_said(
    shoes: Catalog,
) -> None:
    unknown = _render_with_mirror("{% catalog_selection_items shoes picks %}", budget=0)
    unmirrored = _render_with_mirror("{% catalog_items boots b1 %}", budget=0)

    assert unknown.output == "[not previewed: {% catalog_selection_items shoes picks %}]"
    assert 'does not know selection "picks" of catalog "shoes"' in unknown.warnings[0]
    assert unmirrored.warnings == ('the console has no mirror of a catalog named "boots"',)
