import os
import time
from collections.abc import Callable
from typing import Any, cast

import psycopg
import pytest
from django.db import connection

from catalogs.models import Catalog
from catalogs.services import (
    _INDEX_LOCK_CLASS,
    catalog_sort_indexes_ensure,
    catalog_sort_indexes_ensure_all,
    sort_index_name,
)
from tests.factories import CatalogFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _index_valid(name: str) -> bool | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def _name(catalog: Catalog, field: str) -> str:
    return sort_index_name(catalog_pk=catalog.pk, field=field)


def _sort_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'catalogs_catalogitem'"
            " AND indexname LIKE 'catalog\\_item\\_sort\\_%%'"
        )
        return {row[0] for row in cursor.fetchall()}


def test_it_builds_one_valid_sort_index_per_value_field() -> None:
    catalog = cast(Catalog, CatalogFactory())
    built = catalog_sort_indexes_ensure(catalog=catalog)
    assert set(built) == {_name(catalog, f["name"]) for f in catalog.value_fields()}
    assert all(_index_valid(name) for name in built)


def test_it_rebuilds_an_index_left_invalid_by_an_interrupted_build() -> None:
    superuser_url = os.environ.get("PG_SUPERUSER_URL")
    if not superuser_url:
        pytest.skip("PG_SUPERUSER_URL is not set (run through scripts/test)")
    catalog = cast(Catalog, CatalogFactory())
    name = _name(catalog, "price")
    catalog_sort_indexes_ensure(catalog=catalog)
    # What a CREATE INDEX CONCURRENTLY killed half-way leaves behind.
    dbname = connection.settings_dict["NAME"]
    with psycopg.connect(superuser_url, dbname=dbname, autocommit=True) as admin:
        admin.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    assert _index_valid(name) is False
    catalog_sort_indexes_ensure(catalog=catalog)
    assert _index_valid(name) is True


def test_a_second_worker_leaves_the_build_to_the_one_holding_the_lock() -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    other = psycopg.connect(
        host=db["HOST"], dbname=connection.settings_dict["NAME"], user=db["USER"], autocommit=True
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s, 0)", [_INDEX_LOCK_CLASS])
        assert catalog_sort_indexes_ensure(catalog=cast(Catalog, CatalogFactory())) == []
    finally:
        other.close()


def test_the_owners_command_builds_the_indexes_of_every_catalog() -> None:
    from django.core.management import call_command

    catalog = cast(Catalog, CatalogFactory())
    for field in catalog.value_fields():
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {_name(catalog, field['name'])}")
    call_command("catalog_sort_indexes")
    assert all(_index_valid(_name(catalog, f["name"])) for f in catalog.value_fields())


def test_no_request_or_task_code_names_the_owner_login() -> None:
    """The owner alias exists only in the indexer's process (console/processes.py); code a
    web request or a Celery task runs must never reach for it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    allowed = {
        root / "console" / "settings.py",
        root / "catalogs" / "management" / "commands" / "catalog_sort_indexes.py",
    }
    pattern = re.compile(r"""["']owner["']""")
    offenders = [
        str(path.relative_to(root))
        for app in ("console", "catalogs", "templates_app", "users_admin")
        for path in (root / app).rglob("*.py")
        if path not in allowed
        and "migrations" not in path.parts
        and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_each_catalog_has_its_own_partial_index_over_its_own_items() -> None:
    first, second = cast(Catalog, CatalogFactory()), cast(Catalog, CatalogFactory())
    catalog_sort_indexes_ensure_all()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(%s::regclass), pg_get_indexdef(%s::regclass)",
            [_name(first, "price"), _name(second, "price")],
        )
        first_def, second_def = cursor.fetchone()
    assert first_def.endswith(f"WHERE (catalog_id = {first.pk})")
    assert second_def.endswith(f"WHERE (catalog_id = {second.pk})")
    assert _sort_indexes() == {
        _name(c, f["name"]) for c in (first, second) for f in c.value_fields()
    }


def test_a_deleted_fields_index_is_dropped_while_another_catalogs_stays() -> None:
    from catalogs.schema_services import catalog_field_mirror_write

    catalog, other = cast(Catalog, CatalogFactory()), cast(Catalog, CatalogFactory())
    catalog_sort_indexes_ensure_all()
    assert _index_valid(_name(catalog, "price")) is True

    catalog_field_mirror_write(
        catalog_name=catalog.name, action="delete", field={"name": "price", "type": "number"}
    )
    catalog_sort_indexes_ensure_all()

    assert _index_valid(_name(catalog, "price")) is None
    assert _index_valid(_name(other, "price")) is True
    kept = [f["name"] for f in Catalog.objects.get(pk=catalog.pk).value_fields()]
    assert kept
    assert all(_index_valid(_name(catalog, name)) for name in kept)


def test_a_deleted_catalogs_indexes_are_all_dropped() -> None:
    from catalogs.services import catalog_mirror_write

    gone, kept = cast(Catalog, CatalogFactory()), cast(Catalog, CatalogFactory())
    catalog_sort_indexes_ensure_all()
    assert {_name(gone, f["name"]) for f in gone.value_fields()} <= _sort_indexes()

    catalog_mirror_write(name=gone.name, action="delete", state=None)
    catalog_sort_indexes_ensure_all()

    assert _sort_indexes() == {_name(kept, f["name"]) for f in kept.value_fields()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname = ANY(%s)",
            [sorted(_sort_indexes())],
        )
        definitions = [row[0] for row in cursor.fetchall()]
    assert definitions
    assert all(d.endswith(f"WHERE (catalog_id = {kept.pk})") for d in definitions)


def test_an_index_shared_by_every_catalog_from_before_is_dropped() -> None:
    """The indexes made before they were partial covered every catalog's items for one field
    name; the indexer's pass replaces them."""
    catalog = cast(Catalog, CatalogFactory())
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX catalog_item_sort_0123456789abcdef01234567 ON catalogs_catalogitem "
            "(catalog_id, (COALESCE(data -> 'price', 'null'::jsonb)), item_id)"
        )
    catalog_sort_indexes_ensure_all()
    assert _sort_indexes() == {_name(catalog, f["name"]) for f in catalog.value_fields()}


def test_an_item_page_sorted_by_a_field_reads_the_catalogs_own_index() -> None:
    from django.db.backends.postgresql.operations import DatabaseOperations

    from catalogs.selectors import PAGE_SETTINGS, ItemFilter, ItemQuery, catalog_item_page
    from tests.factories import catalog_item_create

    catalog = cast(Catalog, CatalogFactory())
    for i in range(3):
        catalog_item_create(catalog, f"sku-{i}", name=f"Item {i}", price=i + 0.5)
    # The indexer skips a pass while another holds its lock (a worker another test left
    # running): the next pass builds it, as the periodic one does.
    deadline = time.monotonic() + 30
    while _name(catalog, "price") not in _sort_indexes() and time.monotonic() < deadline:
        catalog_sort_indexes_ensure_all()
        time.sleep(0.2)
    captured: list[str] = []
    ops = cast(DatabaseOperations, connection.ops)

    def capture(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        captured.append(ops.compose_sql(sql, params))
        return execute(sql, params, many, context)

    query = ItemQuery(sort="price", descending=True, filters=[ItemFilter("price", "min", 1)])
    with connection.execute_wrapper(capture):
        page = catalog_item_page(catalog=catalog, query=query, limit=2)
    assert [item.item_id for item in page.items] == ["sku-2", "sku-1"]
    with connection.cursor() as cursor:
        # Three rows: only a plan that may neither scan the table nor sort shows whether the
        # index fits (with the statistics earlier tests leave, sorting one row costs nothing).
        cursor.execute(
            "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off"
        )
        try:
            # The page's SELECT, without the SET LOCAL sent in the same message before it.
            cursor.execute("EXPLAIN " + captured[-1].removeprefix(PAGE_SETTINGS))
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
    assert _name(catalog, "price") in plan


def _statistics() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'catalogs_catalogitem'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


def test_each_field_names_sort_expression_has_statistics_until_no_catalog_holds_it() -> None:
    """Partial indexes give the planner no statistics: these tell it how many items a range
    matches (else it may sort every match to show fifty)."""
    from catalogs.schema_services import catalog_field_mirror_write
    from catalogs.services import _statistics_name

    first, second = cast(Catalog, CatalogFactory()), cast(Catalog, CatalogFactory())
    catalog_sort_indexes_ensure_all()
    names = {f["name"] for f in first.value_fields()}
    assert _statistics() == {_statistics_name(name) for name in names}

    for catalog in (first, second):
        catalog_field_mirror_write(
            catalog_name=catalog.name, action="delete", field={"name": "price", "type": "number"}
        )
        catalog_sort_indexes_ensure_all()
        assert (_statistics_name("price") in _statistics()) is (catalog == first)
