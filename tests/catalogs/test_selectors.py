from typing import Any, cast

import pytest
from django.utils import timezone

from catalogs.models import Catalog, CatalogItem
from catalogs.selectors import ItemFilter, ItemQuery, catalog_item_page
from tests.factories import CatalogFactory, catalog_item_create

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


@pytest.mark.django_db(transaction=True)
def test_a_page_of_items_is_one_statement_and_its_setting_ends_with_it() -> None:
    """Outside any transaction, as a request reads it: no BEGIN, SET, SELECT and COMMIT
    (four round trips), and the setting that keeps the plan serial ends with the page."""
    from django.db import connection

    catalog = cast(Catalog, CatalogFactory())
    for i in range(3):
        catalog_item_create(catalog, f"item-{i}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        (before,) = cursor.fetchone()
    statements: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        page = catalog_item_page(catalog=catalog, query=ItemQuery(), limit=2)
    assert [item.item_id for item in page.items] == ["item-0", "item-1"]
    assert page.next_after is not None
    assert len(statements) == 1
    assert statements[0].startswith("SET LOCAL max_parallel_workers_per_gather = 0; SELECT")
    assert connection.get_autocommit()
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone() == (before,)
