#!/usr/bin/env python3
"""Catalog mirror benchmark: N items in one catalog, server time of the item screens.

Loads N items (default 1,000,000) into one catalog's mirror with COPY, builds the indexes
the console builds (trigram search, one sort index per field), then times the item list
view through Django's test client (view, SQL and template: the server's whole answer) for
list, deep keyset pages, sorts, typed filters and search. Prints p50/p95 per operation and
the plan of the slowest queries. Pass line: p95 < 150 ms for every operation.

    scripts/bench-catalog mirror [--items 1000000] [--runs 30]

Run through scripts/bench-catalog (a throw-away PostgreSQL and Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIELDS = [
    ("id", "string"),
    ("name", "string"),
    ("category", "string"),
    ("brand", "string"),
    ("price", "number"),
    ("sale_price", "number"),
    ("rating", "number"),
    ("stock", "number"),
    ("in_stock", "boolean"),
    ("featured", "boolean"),
    ("released_at", "time"),
    ("image_url", "string"),
    ("color", "string"),
]
CATEGORIES = ["shoes", "jackets", "shirts", "trousers", "bags", "hats", "socks", "watches"]
BRANDS = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adatum"]
COLORS = ["black", "white", "navy", "olive", "red", "sand", "grey"]
ADJECTIVES = ["Classic", "Trail", "Urban", "Coastal", "Alpine", "Everyday", "Studio", "Heritage"]
BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _rows(n: int, catalog_id: int, now: str):
    rng = random.Random(20260105)
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        price = round(rng.uniform(5, 400), 2)
        stock = rng.randint(0, 250)
        name = f"{rng.choice(ADJECTIVES)} {category[:-1].title()} {i}"
        brand, color = rng.choice(BRANDS), rng.choice(COLORS)
        image = f"https://img.example.com/products/sku-{i:07d}.jpg"
        released = (BASE - timedelta(hours=rng.randint(0, 24 * 700))).isoformat(
            timespec="milliseconds"
        )
        data = {
            "name": name,
            "category": category,
            "brand": brand,
            "price": price,
            "sale_price": round(price * rng.choice([1, 1, 1, 0.8, 0.7]), 2),
            "rating": round(rng.uniform(1, 5), 1),
            "stock": stock,
            "in_stock": stock > 0,
            "featured": rng.random() < 0.05,
            "released_at": released,
            "image_url": image,
            "color": color,
        }
        item_id = f"sku-{i:07d}"
        search = " ".join([item_id, name, category, brand, image, color]).lower()
        yield (catalog_id, item_id, json.dumps(data), search, now)


def load(n: int) -> int:
    from django.db import connection

    from catalogs.models import Catalog
    from catalogs.services import catalog_sort_indexes_ensure

    Catalog.objects.filter(name="bench_products").delete()
    catalog = Catalog.objects.create(
        name="bench_products",
        description="benchmark",
        fields=[{"name": f, "type": t} for f, t in FIELDS],
        braze_item_count=n,
        mirror_item_count=n,
        last_full_sync_at=datetime.now(UTC),
    )
    started = time.perf_counter()
    raw = connection.connection  # psycopg 3
    assert raw is not None
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS catalog_item_search_trgm")
    now = datetime.now(UTC).isoformat()
    with raw.cursor() as cur:
        copy_sql = (
            "COPY catalogs_catalogitem (catalog_id, item_id, data, search_text, mirrored_at) "
            "FROM STDIN"
        )
        with cur.copy(copy_sql) as copy:
            for row in _rows(n, catalog.pk, now):
                copy.write_row(row)
    raw.commit()
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE INDEX catalog_item_search_trgm ON catalogs_catalogitem "
            "USING gin (search_text gin_trgm_ops)"
        )
    trigram = time.perf_counter()
    catalog_sort_indexes_ensure(catalog=catalog)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE catalogs_catalogitem")
    done = time.perf_counter()
    print(
        f"loaded {n:,} items in {loaded - started:.1f}s (COPY); trigram index "
        f"{trigram - loaded:.1f}s; {len(FIELDS) - 1} sort indexes + analyze "
        f"{done - trigram:.1f}s"
    )
    return int(catalog.pk)


def operations(n: int) -> list[tuple[str, list[dict[str, str]]]]:
    rng = random.Random(7)

    def many(make):
        return [make() for _ in range(40)]

    return [
        ("list: first page (by id)", many(lambda: {})),
        ("list: keyset page deep in the catalog", many(lambda: {"__deep__": "id"})),
        ("sort: price ascending", many(lambda: {"sort": "price"})),
        ("sort: rating descending", many(lambda: {"sort": "-rating"})),
        ("sort: name (text)", many(lambda: {"sort": "name"})),
        (
            "sort: released_at desc, deep page",
            many(lambda: {"sort": "-released_at", "__deep__": "released_at"}),
        ),
        (
            "filter: price range",
            many(
                lambda: {
                    "f_price_min": str(rng.randint(5, 300)),
                    "f_price_max": str(rng.randint(300, 400)),
                }
            ),
        ),
        ("filter: boolean (featured)", many(lambda: {"f_featured": "true"})),
        ("filter: text contains (brand)", many(lambda: {"f_brand": rng.choice(BRANDS)[:5]})),
        (
            "filter: time range",
            many(
                lambda: {"f_released_at_after": "2025-06-01", "f_released_at_before": "2025-09-30"}
            ),
        ),
        (
            "filter + sort: price range by price",
            many(lambda: {"f_price_min": "50", "f_price_max": "60", "sort": "-price"}),
        ),
        ("search: common word", many(lambda: {"q": rng.choice(ADJECTIVES)})),
        ("search: rare (one item)", many(lambda: {"q": f"sku-{rng.randrange(n):07d}"})),
        (
            "search + sort: common word by price",
            many(lambda: {"q": rng.choice(CATEGORIES), "sort": "price"}),
        ),
    ]


def _deep_token(catalog_id: int, field: str, descending: bool) -> str:
    """A keyset position about 60% of the way through the catalog in that order."""
    from django.db import connection

    from catalogs.selectors import encode_position, sort_expression

    with connection.cursor() as cursor:
        if field == "id":
            cursor.execute(
                "SELECT NULL, item_id FROM catalogs_catalogitem WHERE catalog_id = %s "
                "ORDER BY item_id OFFSET (SELECT count(*) * 0.6 FROM catalogs_catalogitem)::int "
                "LIMIT 1",
                [catalog_id],
            )
        else:
            expr, direction = sort_expression(field), "DESC" if descending else "ASC"
            cursor.execute(
                f"SELECT {expr}, item_id FROM catalogs_catalogitem WHERE catalog_id = %s "  # noqa: S608
                f"ORDER BY {expr} {direction}, item_id {direction} "
                "OFFSET (SELECT count(*) * 0.6 FROM catalogs_catalogitem)::int LIMIT 1",
                [catalog_id],
            )
        value, item_id = cursor.fetchone()
    value = json.loads(value) if isinstance(value, str) and field != "id" else value
    return encode_position(value, item_id)


def _p95(values: list[float]) -> float:
    return values[max(0, round(0.95 * len(values)) - 1)]


def _query(catalog, params):
    from django.http import QueryDict

    from catalogs.forms import ItemFilterForm

    data = QueryDict(mutable=True)
    data.update({k: v for k, v in params.items() if k not in ("sort", "after")})
    form = ItemFilterForm(data or None, catalog=catalog)
    sort = params.get("sort", "id")
    return form.item_query(sort=sort.removeprefix("-"), descending=sort.startswith("-"))


def _selector_ms(catalog, params) -> float:
    from catalogs.selectors import catalog_item_page

    query = _query(catalog, params)
    started = time.perf_counter()
    catalog_item_page(catalog=catalog, query=query, after=params.get("after"))
    return (time.perf_counter() - started) * 1000


def _explain(catalog, params) -> str:
    from django.db import connection
    from django.db.backends.postgresql.operations import DatabaseOperations

    from catalogs.selectors import catalog_item_page

    captured: list[str] = []
    ops = cast(DatabaseOperations, connection.ops)  # the console runs on PostgreSQL only

    def capture(execute: Callable[..., Any], sql: str, p: Any, many: bool, ctx: Any) -> Any:
        captured.append(ops.compose_sql(sql, p))
        return execute(sql, p, many, ctx)

    with connection.execute_wrapper(capture):
        catalog_item_page(catalog=catalog, query=_query(catalog, params))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + captured[-1])
        return "\n".join("    " + row[0] for row in cursor.fetchall())


def measure(catalog_id: int, n: int, runs: int) -> bool:
    from django.test import Client
    from django.urls import reverse

    from console.roles import Role
    from tests.factories import user_with_role

    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    url = reverse("catalogs:items", args=["bench_products"])
    headers = {"HX-Request": "true", "HX-Target": "results"}
    from catalogs.models import Catalog

    catalog = Catalog.objects.get(pk=catalog_id)
    ok, slow = True, []
    print("\nview = the whole response (view, SQL, template); sql = the item selector alone")
    print(f"\n{'operation':<40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'sql p95':>8}  rows")
    for label, param_sets in operations(n):
        timings, sql_timings, rows = [], [], 0
        for params in (param_sets * ((runs // len(param_sets)) + 1))[:runs]:
            params = dict(params)
            deep = params.pop("__deep__", None)
            if deep:
                params["after"] = _deep_token(
                    catalog_id, deep, params.get("sort", "").startswith("-")
                )
            started = time.perf_counter()
            response = client.get(url, params, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
            rows = response.content.count(b"<tr>") - 1
            sql_timings.append(_selector_ms(catalog, params))
        timings.sort()
        sql_timings.sort()
        p50 = statistics.median(timings)
        p95 = _p95(timings)
        passed = p95 < 150
        ok &= passed
        print(
            f"{label:<40} {p50:8.1f} {p95:8.1f} {timings[-1]:8.1f} {_p95(sql_timings):8.1f}"
            f"  {rows:>4}{'' if passed else '  ✗ over 150 ms'}"
        )
        if not passed:
            slow.append((label, param_sets[0]))
    for label, params in slow:
        print(f"\nplan of “{label}” ({params}):")
        print(_explain(catalog, params))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]
    print(
        f"catalog mirror benchmark: {args.items:,} items, {args.runs} runs per operation, "
        f"{os.cpu_count()} CPUs"
    )
    catalog_id = load(args.items)
    ok = measure(catalog_id, args.items, args.runs)
    print("\nPASS: every operation p95 < 150 ms" if ok else "\nFAIL: some p95 ≥ 150 ms")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
