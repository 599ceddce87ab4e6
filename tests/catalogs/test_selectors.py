from typing import Any, cast

import pytest
from django.utils import timezone

from catalogs.models import Catalog, CatalogItem
from catalogs.selectors import ItemFilter, ItemQuery, catalog_item_page
from tests.factories import CatalogFactory

pytestmark = pytest.mark.django_db

JAN_2025 = "2025-01-01T00:00:00.000+00:00"
JAN_2026 = "2026-01-01T00:00:00.000+00:00"
JUNE_2025 = "2025-06-01T00:00:00.000+00:00"


@pytest.fixture
def mixed() -> Catalog:
    """Values of every jsonb type in a number field and a time field (Braze's fields are
    typed, but the mirror keeps whatever it was given)."""
    catalog = cast(
        Catalog,
        CatalogFactory(
            fields=[
                {"name": "id", "type": "string"},
                {"name": "price", "type": "number"},
                {"name": "released_at", "type": "time"},
            ]
        ),
    )
    values: dict[str, Any] = {
        "small": 5,
        "middle": 50,
        "large": 500,
        "negative": -1e300,
        "text": "60",
        "flag": True,
        "nothing": None,
        "object": {"a": 1},
        "array": [1],
        "old": JAN_2025,
        "new": JAN_2026,
        "numeric-time": 20260101,
    }
    for item_id, value in values.items():
        data = {} if value is None else {"price": value, "released_at": value}
        CatalogItem.objects.create(
            catalog=catalog, item_id=item_id, data=data, mirrored_at=timezone.now()
        )
    CatalogItem.objects.create(
        catalog=catalog, item_id="missing", data={}, mirrored_at=timezone.now()
    )
    return catalog


def _ids(catalog: Catalog, *filters: ItemFilter) -> list[str]:
    page = catalog_item_page(catalog=catalog, query=ItemQuery(filters=filters), limit=100)
    return sorted(item.item_id for item in page.items)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([ItemFilter("price", "min", 10)], ["large", "middle", "numeric-time"]),
        ([ItemFilter("price", "max", 100)], ["middle", "negative", "small"]),
        ([ItemFilter("price", "min", 10), ItemFilter("price", "max", 100)], ["middle"]),
    ],
)
def test_a_number_range_holds_numbers_only(
    mixed: Catalog, filters: list[ItemFilter], expected: list[str]
) -> None:
    assert _ids(mixed, *filters) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # Times compare as text: "60" sorts after "2025-…".
        ([ItemFilter("released_at", "after", JUNE_2025)], ["new", "text"]),
        ([ItemFilter("released_at", "before", JUNE_2025)], ["old"]),
        (
            [
                ItemFilter("released_at", "after", JAN_2025),
                ItemFilter("released_at", "before", JUNE_2025),
            ],
            ["old"],
        ),
    ],
)
def test_a_time_range_holds_strings_only(
    mixed: Catalog, filters: list[ItemFilter], expected: list[str]
) -> None:
    assert _ids(mixed, *filters) == expected
