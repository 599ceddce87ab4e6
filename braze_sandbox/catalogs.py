"""Catalogs and catalog items: validation, storage and the endpoint handlers."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from braze_sandbox.errors import catalog_error
from braze_sandbox.store import Store, iso_now, parse_iso

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Reference: "POST: Create catalog" (_docs/_api/endpoints/catalogs/catalog_management/
# synchronous/post_create_catalog.md) and "Creating a catalog"
# (_docs/_user_guide/data/activation/catalogs/create.md), supported data types: geolocation is
# a [longitude, latitude] array. The reference collection predates geolocation.
FIELD_TYPES = {"string", "number", "boolean", "time", "object", "array", "geolocation"}
REFERENCE_FIELD_TYPES = FIELD_TYPES - {"geolocation"}
# Fields per catalog: 500 on today's create-catalog page, 30 in the reference collection.
MAX_FIELDS = 500
REFERENCE_MAX_FIELDS = 30
MAX_NAME = 250
MAX_ITEMS_PER_REQUEST = 50
MAX_VALUE_CHARS = 5000
MAX_NESTING = 50
MAX_ARRAY_ELEMENTS = 100
PAGE_SIZE = 50
# PATCH operators on array fields ("PATCH: Edit catalog item", "PATCH: Edit multiple catalog
# items"): today's docs only; the reference collection refuses them like any other `$` key.
ARRAY_OPERATORS = ("$add", "$remove")


def _catalog_json(store: Store, row: Any) -> dict[str, Any]:
    num = store.q1(
        "SELECT COUNT(*) AS n FROM catalog_items WHERE workspace=? AND catalog=?",
        (row["workspace"], row["name"]),
    )
    return {
        "description": row["description"],
        "fields": json.loads(row["fields"]),
        "name": row["name"],
        "num_items": num["n"] if num else 0,
        "updated_at": row["updated_at"],
    }


def get_catalog(store: Store, workspace: str, name: str) -> Any:
    row = store.q1("SELECT * FROM catalogs WHERE workspace=? AND name=?", (workspace, name))
    if row is None:
        raise catalog_error(
            404, "catalog-not-found", "Could not find catalog", ["catalog_name"], [name]
        )
    return row


# --- catalog endpoints -------------------------------------------------------------------


async def list_catalogs(ctx: Ctx) -> JSONResponse:
    rows = ctx.store.q(
        "SELECT * FROM catalogs WHERE workspace=? ORDER BY created_at", (ctx.workspace,)
    )
    return JSONResponse(
        {"catalogs": [_catalog_json(ctx.store, r) for r in rows], "message": "success"}
    )


def validate_catalog(
    body: Any, *, reference: bool = False
) -> tuple[str, str, list[dict[str, str]]]:
    def bad(error_id: str, message: str, param: str = "catalogs", value: Any = None) -> Any:
        return catalog_error(400, error_id, message, [param], [value] if value is not None else [])

    catalogs = body.get("catalogs") if isinstance(body, dict) else None
    if not isinstance(catalogs, list) or not all(isinstance(c, dict) for c in catalogs):
        raise bad("catalog-array-invalid", "catalogs must be an array of objects")
    if len(catalogs) != 1:
        raise bad("too-many-catalog-atoms", "You can only create one catalog per request")
    cat = catalogs[0]
    name, description, fields = cat.get("name"), cat.get("description"), cat.get("fields")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise bad(
            # The reference collection spells this one id with underscores.
            "invalid_catalog_name" if reference else "invalid-catalog-name",
            "Catalog name can only include letters, numbers, hyphens, and underscores",
            "name",
            name,
        )
    if len(name) > MAX_NAME:
        raise bad(
            "catalog-name-too-large", "Character limit for a catalog name is 250", "name", name
        )
    if not isinstance(description, str):
        raise bad("invalid-description", "description must be a string", "description", description)
    if len(description) > MAX_NAME:
        raise bad("description-too-long", "Character limit for description is 250", "description")
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, dict) and set(f) == {"name", "type"} for f in fields)
    ):
        raise bad("invalid-fields", "fields is not formatted correctly", "fields")
    max_fields = REFERENCE_MAX_FIELDS if reference else MAX_FIELDS
    if len(fields) > max_fields:
        raise bad(
            "too-many-fields", f"Number of fields limit is {max_fields}", "fields", len(fields)
        )
    if fields[0]["name"] != "id" or fields[0]["type"] != "string":
        raise bad(
            "id-not-first-column",
            "The id must be the first field in the array and its type must be string",
            "fields",
        )
    names = [f["name"] for f in fields]
    for field_name in names:
        if not isinstance(field_name, str) or not NAME_RE.match(field_name):
            raise bad(
                "invalid-field-names",
                "Fields can only include letters, numbers, hyphens, and underscores",
                "fields",
                field_name,
            )
        if len(field_name) > MAX_NAME:
            raise bad("field-names-too-large", "Character limit for a field name is 250", "fields")
    if len(set(names)) != len(names):
        raise bad("field-names-not-unique", "The same field name is referenced twice", "fields")
    types = REFERENCE_FIELD_TYPES if reference else FIELD_TYPES
    for f in fields:
        if f["type"] not in types:
            raise bad(
                "invalid-field-types", "Make sure the field types are valid", "fields", f["type"]
            )
    return name, description, [{"name": f["name"], "type": f["type"]} for f in fields]


async def create_catalog(ctx: Ctx) -> JSONResponse:
    name, description, fields = validate_catalog(await ctx.json(), reference=ctx.config.reference)
    store, ws = ctx.store, ctx.workspace
    if store.q1("SELECT 1 FROM catalogs WHERE workspace=? AND name=?", (ws, name)):
        raise catalog_error(
            400,
            "catalog-name-already-exists",
            "A catalog with that name already exists",
            ["name"],
            [name],
        )
    count = store.q1("SELECT COUNT(*) AS n FROM catalogs WHERE workspace=?", (ws,))
    if count and count["n"] >= ctx.config.max_catalogs_per_workspace:
        raise catalog_error(
            400,
            "reached-company-catalogs-limit",
            "Maximum number of catalogs reached. Contact your Braze account manager.",
        )
    now = iso_now()
    store.x(
        "INSERT INTO catalogs VALUES (?, ?, ?, ?, ?, ?)",
        (ws, name, description, json.dumps(fields), now, now),
    )
    row = get_catalog(store, ws, name)
    return JSONResponse(
        {"catalogs": [_catalog_json(store, row)], "message": "success"}, status_code=201
    )


async def delete_catalog(ctx: Ctx) -> JSONResponse:
    name = ctx.path("catalog_name")
    get_catalog(ctx.store, ctx.workspace, name)
    ctx.store.x("DELETE FROM catalog_items WHERE workspace=? AND catalog=?", (ctx.workspace, name))
    ctx.store.x("DELETE FROM pending_ops WHERE workspace=? AND catalog=?", (ctx.workspace, name))
    for table in ("catalog_selections", "catalog_inventory"):
        ctx.store.x(
            f"DELETE FROM {table} WHERE workspace=? AND catalog=?",  # noqa: S608
            (ctx.workspace, name),
        )
    ctx.store.x("DELETE FROM catalogs WHERE workspace=? AND name=?", (ctx.workspace, name))
    return JSONResponse({"message": "success"})


# --- item validation ---------------------------------------------------------------------


def _check_id(item_id: Any, param: str = "id") -> None:
    if not isinstance(item_id, str):
        raise catalog_error(
            400, "ids-not-strings", "Item IDs must be of type string", [param], [item_id]
        )
    if len(item_id) > MAX_NAME:
        raise catalog_error(
            400, "ids-too-large", "Item IDs can't be more than 250 characters", [param], [item_id]
        )
    if not NAME_RE.match(item_id):
        raise catalog_error(
            400,
            "invalid-ids",
            "Item IDs can only include letters, numbers, hyphens, and underscores",
            [param],
            [item_id],
        )


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _bad_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return any("." in k or "$" in k or _bad_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_keys(v) for v in value)
    return False


def time_text(value: Any) -> str | None:
    """A time value as Braze's GET examples show it (``2022-11-01T09:03:19.967Z``), or None.

    Both the current docs and the reference collection return times in UTC with ``Z``,
    whatever offset they were written with ("GET: List catalog item details").
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        parsed = parse_iso(value)
        if parsed is None:
            return None
        moment = parsed.astimezone(UTC)
    else:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _coerce(value: Any, field_type: str) -> tuple[bool, Any]:
    """Return (ok, stored value). ``null`` clears any field."""
    if value is None:
        return True, None
    if field_type == "string":
        if isinstance(value, str):
            return True, value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, str(value)
        return False, None
    if field_type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return False, None
            return True, int(number) if number.is_integer() else number
        return False, None
    if field_type == "boolean":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return True, value.lower() == "true"
        return False, None
    if field_type == "time":
        text = time_text(value)
        return (True, text) if text is not None else (False, None)
    if field_type == "object":
        return (True, value) if isinstance(value, dict) else (False, None)
    if field_type == "array":
        ok = (
            isinstance(value, list)
            and len(value) <= MAX_ARRAY_ELEMENTS
            and all(isinstance(v, str) for v in value)
        )
        return (True, value) if ok else (False, None)
    if field_type == "geolocation":
        # [longitude, latitude]; longitude within ±180, latitude within ±90.
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(_is_number(v) for v in value)
            and -180 <= value[0] <= 180
            and -90 <= value[1] <= 90
        )
        return (True, list(value)) if ok else (False, None)
    return False, None


def is_array_ops(value: Any) -> bool:
    """``{"$add": [...], "$remove": [...]}`` (either or both): a PATCH on an array field."""
    return isinstance(value, dict) and bool(value) and set(value) <= set(ARRAY_OPERATORS)


def _ops_ok(value: dict[str, Any]) -> bool:
    return all(
        isinstance(v, list) and len(v) <= MAX_ARRAY_ELEMENTS and all(isinstance(e, str) for e in v)
        for v in value.values()
    )


def apply_array_ops(current: Any, ops: dict[str, Any]) -> list[str]:
    """The array after ``$remove`` (every occurrence) then ``$add`` (values not yet held).

    Braze documents the operators but not duplicates or order; README ("Catalog values")
    lists the sandbox's choices.
    """
    removed = set(ops.get("$remove", []))
    result = [v for v in (current if isinstance(current, list) else []) if v not in removed]
    result += [v for v in dict.fromkeys(ops.get("$add", [])) if v not in result]
    return result


def merge_values(current: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A PATCH's values over the stored item, with array operators applied."""
    merged = dict(current)
    for key, value in values.items():
        merged[key] = apply_array_ops(current.get(key), value) if is_array_ops(value) else value
    return merged


def arrays_fit(values: dict[str, Any]) -> bool:
    return all(not isinstance(v, list) or len(v) <= MAX_ARRAY_ELEMENTS for v in values.values())


def _value_chars(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value))


def check_item_size(item_id: str, values: dict[str, Any]) -> None:
    """Synchronous item endpoints: 5,000 characters for the whole item.

    The synchronous pages say "Character limit for each item is 5,000 characters", the
    asynchronous ones "Item values can't exceed 5,000 characters". The sandbox holds each
    endpoint to its own page's wording, the stricter one on the synchronous endpoints.
    """
    if sum(_value_chars(v) for v in values.values() if v is not None) > MAX_VALUE_CHARS:
        raise catalog_error(
            400,
            "items-too-large",
            "Character limit for each item is 5,000 characters",
            ["id"],
            [item_id],
        )


def validate_item_values(
    catalog: Any,
    item_id: str,
    values: dict[str, Any],
    *,
    patch: bool = False,
    reference: bool = False,
) -> dict[str, Any]:
    """Check one item's non-id fields against the catalog schema; return coerced values.

    With ``patch`` (current profile only) an array field may carry ``$add``/``$remove``; the
    operators are kept as given and applied when the item is written.
    """
    types = {f["name"]: f["type"] for f in json.loads(catalog["fields"])}
    unknown = [k for k in values if k not in types or k == "id"]
    if unknown:
        raise catalog_error(
            400,
            "invalid-fields",
            "Some of the fields given do not exist in the catalog",
            ["id"],
            [item_id],
        )
    out: dict[str, Any] = {}
    for key, value in values.items():
        operators = patch and not reference and types[key] == "array" and is_array_ops(value)
        if not operators and _bad_keys(value):
            raise catalog_error(
                400,
                "invalid-keys-in-value-object",
                "Item object keys can't include '.' or '$'",
                ["id"],
                [item_id],
            )
        if _depth(value) > MAX_NESTING:
            raise catalog_error(
                400,
                "too-deep-nesting-in-value-object",
                "Item objects can't have more than 50 levels of nesting",
                ["id"],
                [item_id],
            )
        if _value_chars(value) > MAX_VALUE_CHARS:
            raise catalog_error(
                400,
                "items-too-large",
                "Item values can't exceed 5,000 characters",
                ["id"],
                [item_id],
            )
        ok, coerced = (_ops_ok(value), value) if operators else _coerce(value, types[key])
        if not ok:
            raise catalog_error(
                400,
                "unable-to-coerce-value",
                f"Value for field '{key}' can't be converted to {types[key]}",
                ["id"],
                [item_id],
            )
        out[key] = coerced
    return out


def _items_array(body: Any) -> list[Any]:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or not items:
        raise catalog_error(
            400, "item-array-invalid", "items must be an array of objects", ["items"]
        )
    return items


def validate_bulk(
    catalog: Any, body: Any, op: str, *, reference: bool = False
) -> list[dict[str, Any]]:
    items = _items_array(body)
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise catalog_error(
            400,
            "request-includes-too-many-items",
            "Your request has too many items. The item limit per request is 50.",
            ["items"],
            [len(items)],
        )
    missing = sum(1 for i in items if "id" not in i)
    if missing:
        raise catalog_error(
            400, "items-missing-ids", f"There are {missing} item(s) that do not have ids"
        )
    ids = [i["id"] for i in items]
    for item_id in ids:
        _check_id(item_id)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise catalog_error(
            400, "ids-not-unique", "Item IDs must be unique in the request", ["id"], duplicates
        )
    out = []
    for item in items:
        values = {k: v for k, v in item.items() if k != "id"}
        clean = (
            {}
            if op == "delete"
            else validate_item_values(
                catalog, item["id"], values, patch=op == "edit", reference=reference
            )
        )
        out.append({"id": item["id"], **clean})
    return out


# --- synchronous item endpoints ------------------------------------------------------------


def _item_json(row: Any) -> dict[str, Any]:
    return {"id": row["item_id"], **json.loads(row["data"])}


def encode_cursor(skip: int) -> str:
    return base64.b64encode(f"skip:{skip}".encode()).decode()


def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "skip" or not number.isdigit():
        return None
    return int(number)


async def list_items(ctx: Ctx) -> JSONResponse:
    name = ctx.path("catalog_name")
    get_catalog(ctx.store, ctx.workspace, name)
    cursor = ctx.request.query_params.get("cursor")
    skip = 0
    if cursor is not None:
        decoded = decode_cursor(cursor)
        if decoded is None:
            raise catalog_error(
                400, "invalid-cursor", "'cursor' is not valid", ["cursor"], [cursor]
            )
        skip = decoded
    total_row = ctx.store.q1(
        "SELECT COUNT(*) AS n FROM catalog_items WHERE workspace=? AND catalog=?",
        (ctx.workspace, name),
    )
    total = total_row["n"] if total_row else 0
    rows = ctx.store.q(
        "SELECT item_id, data FROM catalog_items WHERE workspace=? AND catalog=?"
        " ORDER BY pk LIMIT ? OFFSET ?",
        (ctx.workspace, name, PAGE_SIZE, skip),
    )
    headers: dict[str, str] = {}
    if total > PAGE_SIZE:
        # Relative URLs, comma without a space: exactly the documented form (braze-facts §6).
        links = []
        if cursor is not None and skip > 0:
            prev = encode_cursor(max(skip - PAGE_SIZE, 0))
            links.append(f'</catalogs/{name}/items?cursor={prev}>; rel="prev"')
        if skip + PAGE_SIZE < total:
            links.append(
                f'</catalogs/{name}/items?cursor={encode_cursor(skip + PAGE_SIZE)}>; rel="next"'
            )
        if links:
            headers["Link"] = ",".join(links)
    ctx.item_ids = [r["item_id"] for r in rows]
    return JSONResponse(
        {"items": [_item_json(r) for r in rows], "message": "success"}, headers=headers
    )


# --- catalog storage ---------------------------------------------------------------------------

# Reference: "PUT: Replace Multiple Catalog Items"
# (_docs/_api/endpoints/catalogs/catalog_items/asynchronous/put_update_catalog_items.md),
# Response and Troubleshooting: a 400 when the company's catalog storage is full, and a 400
# when the request needs more storage than is left ("try again with a smaller update").
# That page is the only item page listing the two ids; storage is company-wide and counted on
# items (braze-facts §1.1), so every endpoint that can add item data refuses alike here:
# bulk and single create, replace and edit. Deletes free storage and are never refused.
STORAGE_ERRORS: dict[str, tuple[str, str]] = {
    "reached": ("company-size-limit-already-reached", "The company's catalog storage is full"),
    "surge": (
        "company-size-limit-surge",
        "The request needs more catalog storage than the company has left",
    ),
}


def check_storage(ctx: Ctx) -> None:
    """Refuse an item write while the ``storage_limit`` knob says storage is full."""
    refusal = STORAGE_ERRORS.get(ctx.config.storage_limit)
    if refusal is not None:
        raise catalog_error(400, *refusal)


def _path_item(ctx: Ctx) -> tuple[Any, str]:
    catalog = get_catalog(ctx.store, ctx.workspace, ctx.path("catalog_name"))
    item_id = ctx.path("item_id")
    _check_id(item_id, "item_id")
    ctx.item_ids = [item_id]
    return catalog, item_id


def _find_item(ctx: Ctx, catalog: Any, item_id: str) -> Any:
    return ctx.store.q1(
        "SELECT item_id, data FROM catalog_items WHERE workspace=? AND catalog=? AND item_id=?",
        (ctx.workspace, catalog["name"], item_id),
    )


def _not_found(item_id: str) -> Exception:
    return catalog_error(404, "item-not-found", "Could not find item", ["item_id"], [item_id])


async def _single_body(
    ctx: Ctx, catalog: Any, item_id: str, *, patch: bool = False
) -> dict[str, Any]:
    items = _items_array(await ctx.json())
    if len(items) > 1:
        raise catalog_error(
            400,
            "request-includes-too-many-items",
            "You can only send one catalog item per request",
            ["items"],
            [len(items)],
        )
    if "id" in items[0]:
        raise catalog_error(
            400, "id-in-body", "Remove any item IDs in the request body", ["id"], [items[0]["id"]]
        )
    return validate_item_values(
        catalog, item_id, items[0], patch=patch, reference=ctx.config.reference
    )


def touch_catalog(store: Store, workspace: str, name: str) -> None:
    store.x(
        "UPDATE catalogs SET updated_at=? WHERE workspace=? AND name=?",
        (iso_now(), workspace, name),
    )


def write_item(
    store: Store, workspace: str, catalog: str, item_id: str, data: dict[str, Any]
) -> None:
    # UPSERT keeps the row's position (pk), so pagination order stays stable across replaces.
    store.x(
        "INSERT INTO catalog_items (workspace, catalog, item_id, data) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (workspace, catalog, item_id) DO UPDATE SET data=excluded.data",
        (workspace, catalog, item_id, json.dumps(data)),
    )


async def get_item(ctx: Ctx) -> JSONResponse:
    catalog, item_id = _path_item(ctx)
    row = _find_item(ctx, catalog, item_id)
    if row is None:
        raise _not_found(item_id)
    return JSONResponse({"items": [_item_json(row)], "message": "success"})


async def create_item(ctx: Ctx) -> JSONResponse:
    catalog, item_id = _path_item(ctx)
    values = await _single_body(ctx, catalog, item_id)
    check_item_size(item_id, values)
    check_storage(ctx)
    if _find_item(ctx, catalog, item_id) is not None:
        raise catalog_error(
            400, "item-already-exists", "The item already exists in the catalog", ["id"], [item_id]
        )
    write_item(ctx.store, ctx.workspace, catalog["name"], item_id, values)
    touch_catalog(ctx.store, ctx.workspace, catalog["name"])
    return JSONResponse({"message": "success"}, status_code=201)


async def replace_item(ctx: Ctx) -> JSONResponse:
    catalog, item_id = _path_item(ctx)
    values = await _single_body(ctx, catalog, item_id)
    check_item_size(item_id, values)
    check_storage(ctx)
    write_item(ctx.store, ctx.workspace, catalog["name"], item_id, values)
    touch_catalog(ctx.store, ctx.workspace, catalog["name"])
    return JSONResponse({"message": "success"})


async def edit_item(ctx: Ctx) -> JSONResponse:
    catalog, item_id = _path_item(ctx)
    values = await _single_body(ctx, catalog, item_id, patch=True)
    check_storage(ctx)
    row = _find_item(ctx, catalog, item_id)
    if row is None:
        raise _not_found(item_id)
    merged = merge_values(json.loads(row["data"]), values)
    if not arrays_fit(merged):
        raise catalog_error(
            400,
            "unable-to-coerce-value",
            f"An array field would hold more than {MAX_ARRAY_ELEMENTS} values",
            ["id"],
            [item_id],
        )
    check_item_size(item_id, merged)
    write_item(ctx.store, ctx.workspace, catalog["name"], item_id, merged)
    touch_catalog(ctx.store, ctx.workspace, catalog["name"])
    return JSONResponse({"message": "success"})


async def delete_item(ctx: Ctx) -> JSONResponse:
    catalog, item_id = _path_item(ctx)
    if _find_item(ctx, catalog, item_id) is None:
        raise _not_found(item_id)
    ctx.store.x(
        "DELETE FROM catalog_items WHERE workspace=? AND catalog=? AND item_id=?",
        (ctx.workspace, catalog["name"], item_id),
    )
    touch_catalog(ctx.store, ctx.workspace, catalog["name"])
    # Braze documents 202 for this synchronous delete; the sandbox deletes before answering.
    return JSONResponse({"message": "success"}, status_code=202)


# --- asynchronous bulk item endpoints ------------------------------------------------------


def _bulk(op: str) -> Any:
    async def handler(ctx: Ctx) -> JSONResponse:
        catalog = get_catalog(ctx.store, ctx.workspace, ctx.path("catalog_name"))
        items = validate_bulk(catalog, await ctx.json(), op, reference=ctx.config.reference)
        ctx.item_ids = [i["id"] for i in items]
        if op != "delete":
            check_storage(ctx)
        if not ctx.config.store_items:
            return JSONResponse({"message": "success"}, status_code=202)
        now = ctx.now
        ctx.store.x(
            "INSERT INTO pending_ops (workspace, catalog, op, items, accepted_at, due)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                ctx.workspace,
                catalog["name"],
                op,
                json.dumps(items),
                now,
                now + ctx.config.async_delay_seconds,
            ),
        )
        ctx.sandbox.wake_applier()
        return JSONResponse({"message": "success"}, status_code=202)

    handler.__name__ = f"bulk_{op}"
    return handler


bulk_create = _bulk("create")
bulk_edit = _bulk("edit")
bulk_replace = _bulk("replace")
bulk_delete = _bulk("delete")


def apply_op(store: Store, op_row: Any, now: float) -> dict[str, list[str]]:
    """Apply one accepted bulk request, in acceptance order. Returns per-item outcomes.

    Braze does not document what happens to items that no longer fit when the request is
    applied; the choices are listed in README ("Async semantics").
    """
    workspace, catalog, op = op_row["workspace"], op_row["catalog"], op_row["op"]
    outcome: dict[str, list[str]] = {"applied": [], "skipped": []}
    if (
        store.q1("SELECT 1 FROM catalogs WHERE workspace=? AND name=?", (workspace, catalog))
        is None
    ):
        outcome["skipped"] = [i["id"] for i in json.loads(op_row["items"])]
        return outcome
    store.db.execute("BEGIN")
    for item in json.loads(op_row["items"]):
        item_id = item.pop("id")
        row = store.q1(
            "SELECT data FROM catalog_items WHERE workspace=? AND catalog=? AND item_id=?",
            (workspace, catalog, item_id),
        )
        if (op == "create" and row is None) or op == "replace":
            write_item(store, workspace, catalog, item_id, item)
        elif op == "edit" and row is not None:
            merged = merge_values(json.loads(row["data"]), item)
            if not arrays_fit(merged):
                outcome["skipped"].append(item_id)  # `$add` past 100 values
                continue
            write_item(store, workspace, catalog, item_id, merged)
        elif op == "delete" and row is not None:
            store.x(
                "DELETE FROM catalog_items WHERE workspace=? AND catalog=? AND item_id=?",
                (workspace, catalog, item_id),
            )
        else:
            outcome["skipped"].append(item_id)
            continue
        outcome["applied"].append(item_id)
    store.x(
        "UPDATE catalogs SET updated_at=? WHERE workspace=? AND name=?",
        (iso_now(), workspace, catalog),
    )
    store.x(
        "INSERT INTO async_results (workspace, catalog, op, accepted_at, applied_at, outcome)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (workspace, catalog, op, op_row["accepted_at"], now, json.dumps(outcome)),
    )
    store.x("DELETE FROM pending_ops WHERE id=?", (op_row["id"],))
    store.db.execute("COMMIT")
    return outcome
