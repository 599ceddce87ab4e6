"""Reads of the catalog mirror: catalogs, sync state, and keyset pages of items.

Item pages are plain SQL so that each sort and range uses the same expression as its
index (``catalog_sort_indexes_ensure``): ``COALESCE(data -> 'field', 'null')`` in jsonb
order, where numbers compare as numbers and ISO 8601 times in one offset as text. Those
indexes are partial, one catalog each, so the catalog is a literal in the SQL: a parameter
would leave a generic plan unable to prove ``catalog_id = pk`` and use them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.http import Http404

from catalogs.models import Catalog, CatalogItem, CatalogSync
from console.workspaces import workspace_default_key

_SAFE_FIELD = re.compile(r"^[A-Za-z0-9_-]{1,250}$")
PAGE_SIZE = 50


def sort_expression(field_name: str) -> str | None:
    """The SQL for one field's sort key, or None for a name that cannot be embedded."""
    if not _SAFE_FIELD.match(field_name):
        return None
    return f"COALESCE(data -> '{field_name}', 'null'::jsonb)"


def catalog_list(*, workspace: str | None = None) -> list[Catalog]:
    """The mirrored catalogs of ``workspace`` (a key; default: the default workspace)."""
    chosen = workspace if workspace is not None else workspace_default_key()
    return list(Catalog.objects.filter(workspace=chosen).order_by("name"))


def catalog_get(*, name: str, workspace: str | None = None) -> Catalog:
    """``workspace``'s catalog ``name`` (default: the default workspace's); 404 if absent."""
    chosen = workspace if workspace is not None else workspace_default_key()
    try:
        return Catalog.objects.get(workspace=chosen, name=name)
    except Catalog.DoesNotExist:
        raise Http404("No such catalog in the mirror.") from None


def catalog_sync_latest(*, catalog: Catalog) -> CatalogSync | None:
    return CatalogSync.objects.filter(catalog=catalog).order_by("-id").first()


def catalog_item_get(*, catalog: Catalog, item_id: str) -> CatalogItem:
    try:
        return CatalogItem.objects.get(catalog=catalog, item_id=item_id)
    except CatalogItem.DoesNotExist:
        raise Http404("No such item in the mirror.") from None


def catalog_item_sample(*, catalog: Catalog, limit: int = 5) -> list[CatalogItem]:
    return list(CatalogItem.objects.filter(catalog=catalog).order_by("item_id")[:limit])


@dataclass(frozen=True)
class ItemFilter:
    field: str
    kind: str  # contains, min, max, is, after, before
    value: Any


@dataclass(frozen=True)
class ItemQuery:
    search: str = ""
    sort: str = "id"
    descending: bool = False
    filters: Sequence[ItemFilter] = ()


@dataclass
class ItemPage:
    items: list[CatalogItem]
    next_after: str | None = None
    previous_before: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def encode_position(sort_value: Any, item_id: str) -> str:
    raw = json.dumps([sort_value, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(token: str) -> tuple[Any, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, item_id = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return (value, item_id) if isinstance(item_id, str) else None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(catalog: Catalog, query: ItemQuery) -> tuple[list[str], list[Any]]:
    # An integer from the database, never request text (see the module's docstring).
    clauses: list[str] = [f"catalog_id = {int(catalog.pk)}"]
    params: list[Any] = []
    if query.search.strip():
        clauses.append("search_text LIKE %s")
        params.append(_like(query.search.strip()))
    types = catalog.field_types()
    ranges: dict[str, dict[str, Any]] = {}
    for flt in query.filters:
        expr = sort_expression(flt.field)
        if expr is None or flt.field not in types:
            continue
        if flt.kind == "contains":
            # The trigram index narrows on search_text; the field itself is the recheck,
            # written as strpos: a second LIKE would have the planner guess that almost
            # nothing matches and sort every match rather than walk the page's order.
            clauses.append("search_text LIKE %s")
            clauses.append(f"strpos(lower(data ->> '{flt.field}'), %s) > 0")
            params += [_like(flt.value), str(flt.value).lower()]
        elif flt.kind == "is":
            clauses.append(f"{expr} = %s::jsonb")
            params.append(json.dumps(bool(flt.value)))
        elif flt.kind in ("min", "max", "after", "before"):
            ranges.setdefault(flt.field, {})[flt.kind] = flt.value
    for name, bounds in ranges.items():
        expr = sort_expression(name)
        low, high, high_op = _range(bounds)
        # One range on the indexed expression: its index bounds the scan and its statistics
        # give the planner the share of items in range (a type test would hide both).
        clauses.append(f"{expr} >= %s::jsonb AND {expr} {high_op} %s::jsonb")
        params += [low, high]
    return clauses, params


# jsonb orders types null < string < number < boolean: a type's values lie between two
# fixed bounds. Braze's numbers are doubles, so none is below the lowest double.
_LOWEST_NUMBER = "-1.7976931348623157e308"


def _range(bounds: dict[str, Any]) -> tuple[str, str, str]:
    """(low, high, operator for high) in jsonb for a number's min/max or a time's
    after/before: only values of the filter's type fall inside, as the type test did."""
    if "min" in bounds or "max" in bounds:
        low = json.dumps(bounds["min"]) if "min" in bounds else _LOWEST_NUMBER
        if "max" in bounds:
            return low, json.dumps(bounds["max"]), "<="
        return low, "false", "<"
    low = json.dumps(bounds["after"]) if "after" in bounds else '""'
    if "before" in bounds:
        return low, json.dumps(bounds["before"]), "<="
    return low, _LOWEST_NUMBER, "<"


# Sent in the same message as an item page's SELECT (see catalog_item_page).
PAGE_SETTINGS = "SET LOCAL max_parallel_workers_per_gather = 0; "


def catalog_item_page(
    *,
    catalog: Catalog,
    query: ItemQuery,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> ItemPage:
    """One keyset page: items after (or before) a position, in (sort key, item_id) order."""
    clauses, params = _where(catalog, query)
    by_id = query.sort == "id" or sort_expression(query.sort) is None
    key = "item_id" if by_id else sort_expression(query.sort)
    backwards = before is not None and after is None
    token = (before if backwards else after) or ""
    position = decode_position(token) if token else None
    # Going backwards walks the index the other way, then the page is turned round.
    descending = query.descending != backwards
    op = "<" if descending else ">"
    if position is not None:
        value, item_id = position
        if by_id:
            clauses.append(f"item_id {op} %s")
            params.append(item_id)
        else:
            clauses.append(f"({key}, item_id) {op} (%s::jsonb, %s)")
            params += [json.dumps(value), item_id]
    direction = "DESC" if descending else "ASC"
    order = f"item_id {direction}" if by_id else f"{key} {direction}, item_id {direction}"
    # Only field names matching _SAFE_FIELD are embedded; every value is a parameter.
    sql = (
        f"SELECT id, item_id, data, {key if not by_id else 'NULL'} AS sort_value "  # noqa: S608
        f"FROM catalogs_catalogitem WHERE {' AND '.join(clauses)} "
        f"ORDER BY {order} LIMIT %s"
    )
    with connection.cursor() as cursor:
        # A page is at most a few hundred index entries: parallel workers would cost more to
        # start than the scan (tens of ms on a busy host, for a sub-millisecond plan). The SET
        # and the SELECT go as one message, one round trip: outside a transaction PostgreSQL
        # runs a message's statements as one implicit transaction, which ends the SET LOCAL
        # with it. This needs client-side parameter binding (Django's default for psycopg).
        cursor.execute(PAGE_SETTINGS + sql, [*params, limit + 1])
        cursor.nextset()
        rows = cursor.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    items = []
    for pk, item_id, data, sort_value in rows:
        item = CatalogItem(pk=pk, catalog=catalog, item_id=item_id, data=_json(data))
        item.sort_value = _json(sort_value) if not by_id else None  # type: ignore[attr-defined]
        items.append(item)
    page = ItemPage(items=items)
    if items:
        first, last = items[0], items[-1]
        has_next = more if not backwards else True
        has_previous = (position is not None) if not backwards else more
        if has_next:
            page.next_after = encode_position(last.sort_value, last.item_id)  # type: ignore[attr-defined]
        if has_previous:
            page.previous_before = encode_position(first.sort_value, first.item_id)  # type: ignore[attr-defined]
    return page


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def catalog_items_iter(
    *, catalog: Catalog, query: ItemQuery, batch: int = 2000
) -> Iterator[CatalogItem]:
    """Every matching item in order, in keyset batches (for the streamed CSV export)."""
    after: str | None = None
    while True:
        page = catalog_item_page(catalog=catalog, query=query, after=after, limit=batch)
        yield from page.items
        if page.next_after is None:
            return
        after = page.next_after


def catalog_item_exists(*, catalog: Catalog, item_id: str) -> bool:
    return CatalogItem.objects.filter(catalog=catalog, item_id=item_id).exists()
