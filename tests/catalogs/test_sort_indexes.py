import os
from typing import cast

import psycopg
import pytest
from django.db import connection

from catalogs.models import Catalog
from catalogs.services import _INDEX_LOCK_CLASS, _sort_index_name, catalog_sort_indexes_ensure
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


def test_it_builds_one_valid_sort_index_per_value_field() -> None:
    catalog = cast(Catalog, CatalogFactory())
    built = catalog_sort_indexes_ensure(catalog=catalog)
    assert set(built) == {_sort_index_name(f["name"]) for f in catalog.value_fields()}
    assert all(_index_valid(name) for name in built)


def test_it_rebuilds_an_index_left_invalid_by_an_interrupted_build() -> None:
    superuser_url = os.environ.get("PG_SUPERUSER_URL")
    if not superuser_url:
        pytest.skip("PG_SUPERUSER_URL is not set (run through scripts/test)")
    catalog = cast(Catalog, CatalogFactory())
    name = _sort_index_name("price")
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
            cursor.execute(f"DROP INDEX IF EXISTS {_sort_index_name(field['name'])}")
    call_command("catalog_sort_indexes")
    assert all(_index_valid(_sort_index_name(f["name"])) for f in catalog.value_fields())


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


def test_a_deleted_fields_sort_index_is_dropped_once_no_catalog_holds_the_field() -> None:
    from catalogs.schema_services import catalog_field_mirror_write
    from catalogs.services import catalog_sort_indexes_ensure_all

    catalog = cast(Catalog, CatalogFactory())
    catalog_sort_indexes_ensure_all()
    assert _index_valid(_sort_index_name("price")) is True

    catalog_field_mirror_write(
        catalog_name=catalog.name, action="delete", field={"name": "price", "type": "number"}
    )
    catalog_sort_indexes_ensure_all()

    assert _index_valid(_sort_index_name("price")) is None
    kept = [f["name"] for f in Catalog.objects.get(pk=catalog.pk).value_fields()]
    assert kept
    assert all(_index_valid(_sort_index_name(name)) for name in kept)
