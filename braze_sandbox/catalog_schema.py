"""Catalog fields and selections: the four asynchronous schema endpoints and their evaluation.

Pages (braze-inc/braze-docs): "POST: Create catalog fields"
(`_docs/_api/endpoints/catalogs/catalog_fields/asynchronous/post_create_catalog_fields.md`),
"DELETE: Delete catalog field" (`…/catalog_fields/asynchronous/delete_catalog_field.md`),
"POST: Create catalog selection" (`…/catalog_selections/asynchronous/
post_create_catalog_selections.md`), "DELETE: Delete catalog selection"
(`…/catalog_selections/asynchronous/delete_catalog_selection.md`) and the "Catalog selection
object" (`_docs/_api/objects_filters/catalog_selection_object.md`). The pages list error ids with
troubleshooting text but no messages; the messages below are that text turned into a statement,
and the console's rules (``catalogs/schema_rules.py``) use the same table of words.

Every request is checked when it arrives (a 4xx answers at once), then queued in ``pending_ops``
behind any item request accepted before it and applied after ``async_delay_seconds``, like the
bulk item endpoints. Whatever no longer fits when it is applied is skipped (README, "Catalog
fields and selections").
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from braze_sandbox.catalogs import (
    FIELD_TYPES,
    MAX_NAME,
    NAME_RE,
    REFERENCE_FIELD_TYPES,
    check_storage,
    get_catalog,
    time_text,
)
from braze_sandbox.errors import catalog_error
from braze_sandbox.store import Store, iso_now

if TYPE_CHECKING:
    from braze_sandbox.ctx import Ctx

MAX_FIELDS_PER_REQUEST = 50
MAX_FIELDS_PER_CATALOG = 500
MAX_SELECTIONS_PER_CATALOG = 30  # "Catalog selections" user guide page
MAX_FILTERS = 4  # selection object page: "up to four filters per request"
MAX_RESULTS_LIMIT = 50
# Docs: "If both sort_field and sort_order are not present, the results will be randomized";
# the pages name no default limit, so the largest allowed one.
DEFAULT_RESULTS_LIMIT = 50
SORT_ORDERS = ("asc", "desc")
SOURCES = ("Shopify", "Braze")

# "Filter operators" table on the create-selection page.
OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("equals", "does not equal"),
    "number": ("equals", "does not equal", "greater than", "less than"),
    "boolean": ("is",),
    "time": ("before", "after"),
    "array": ("includes value", "does not include value"),
}

# id -> message. Ids are Braze's; messages restate each page's troubleshooting text.
MESSAGES: dict[str, str] = {
    "catalog-not-found": "Could not find catalog",
    "request-includes-too-many-fields": "Each request can support up to 50 new fields",
    "catalog-exceeds-fields-limit": "Catalog cannot have more than 500 fields",
    "invalid-fields": "fields is not formatted correctly",
    "invalid-field-names": "Fields can only include letters, numbers, hyphens, and underscores",
    "field-names-too-large": "Character limit for a field name is 250",
    "field-names-not-unique": "The same field name is referenced twice",
    "field-already-exists": "A field with that name already exists in the catalog",
    "invalid-field-types": "Make sure the field types are valid",
    "invalid-field-name": "The catalog field name is not valid",
    "field-referenced-by-selection": "The catalog field is currently in use by a selection",
    "field-is-inventory": "The catalog field is used as an inventory field",
    "selection-limit-reached": "The catalog selections limit is reached",
    "invalid-selection": "The selection is not valid",
    "too-many-filters": "The selection has too many filters",
    "selection-name-already-exists": "The selection name already exists in the catalog",
    "selection-has-invalid-filter": "The selection filter is not valid",
    "selection-invalid-results-limit": "The selection results limit is not valid",
    "invalid-sorting": "The selection sorting is not valid",
    "invalid-sort-field": "The selection sort field is not valid",
    "invalid-sort-order": "The selection sort order is not valid",
    "selection-contains-too-many-arrays": (
        "The selection contains more than one field with array type. Only one is supported"
    ),
}

OPS = ("create_fields", "delete_field", "create_selection", "delete_selection")


def _err(status: int, error_id: str, param: str, value: Any = None) -> Exception:
    values = [] if value is None else [value]
    return catalog_error(status, error_id, MESSAGES[error_id], [param], values)


def _fields(catalog: Any) -> list[dict[str, str]]:
    fields: list[dict[str, str]] = json.loads(catalog["fields"])
    return fields


def selections(store: Store, workspace: str, catalog: str) -> list[dict[str, Any]]:
    rows = store.q(
        "SELECT name, definition FROM catalog_selections WHERE workspace=? AND catalog=?"
        " ORDER BY created_at, name",
        (workspace, catalog),
    )
    return [{"name": r["name"], **json.loads(r["definition"])} for r in rows]


def selection_fields(definition: dict[str, Any]) -> set[str]:
    """The fields a selection reads: its filters' and its sort field."""
    used = {f["field"] for f in definition.get("filters", [])}
    if definition.get("sort_field"):
        used.add(definition["sort_field"])
    return used


# --- validation -----------------------------------------------------------------------------


def validate_new_fields(
    catalog: Any, body: Any, *, reference: bool = False
) -> list[dict[str, str]]:
    fields = body.get("fields") if isinstance(body, dict) else None
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, dict) and set(f) == {"name", "type"} for f in fields)
    ):
        raise _err(400, "invalid-fields", "fields")
    if len(fields) > MAX_FIELDS_PER_REQUEST:
        raise _err(400, "request-includes-too-many-fields", "fields", len(fields))
    names = [f["name"] for f in fields]
    for name in names:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _err(400, "invalid-field-names", "fields", name)
        if len(name) > MAX_NAME:
            raise _err(400, "field-names-too-large", "fields", name)
    if len(set(names)) != len(names):
        raise _err(400, "field-names-not-unique", "fields")
    existing = {f["name"] for f in _fields(catalog)}
    taken = [n for n in names if n in existing]
    if taken:
        raise _err(400, "field-already-exists", "fields", taken[0])
    types = REFERENCE_FIELD_TYPES if reference else FIELD_TYPES
    for f in fields:
        if f["type"] not in types:
            raise _err(400, "invalid-field-types", "fields", f["type"])
    if len(existing) + len(fields) > MAX_FIELDS_PER_CATALOG:
        raise _err(400, "catalog-exceeds-fields-limit", "fields", len(existing) + len(fields))
    return [{"name": f["name"], "type": f["type"]} for f in fields]


def check_field_deletable(store: Store, workspace: str, catalog: Any, field_name: str) -> None:
    names = {f["name"] for f in _fields(catalog)}
    # `id` is the catalog's key: it is a field but can never be removed.
    if field_name not in names or field_name == "id":
        raise _err(404, "invalid-field-name", "field_name", field_name)
    if field_name in inventory_fields(store, workspace, catalog["name"]):
        raise _err(400, "field-is-inventory", "field_name", field_name)
    for selection in selections(store, workspace, catalog["name"]):
        if field_name in selection_fields(selection):
            raise _err(400, "field-referenced-by-selection", "field_name", field_name)


def inventory_fields(store: Store, workspace: str, catalog: str) -> set[str]:
    row = store.q1(
        "SELECT inventory FROM catalog_inventory WHERE workspace=? AND catalog=?",
        (workspace, catalog),
    )
    return set(json.loads(row["inventory"])) if row else set()


def _filter_value(field_type: str, operator: str, value: Any) -> tuple[bool, Any]:
    if field_type == "string" or field_type == "array":
        return (True, value) if isinstance(value, str) else (False, None)
    if field_type == "number":
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int | float) and math.isfinite(value):
            return True, value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return False, None
            return (True, number) if math.isfinite(number) else (False, None)
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
    return False, None


def validate_selection(store: Store, workspace: str, catalog: Any, body: Any) -> dict[str, Any]:
    """Return the selection's stored definition, or raise Braze's error."""
    selection = body.get("selection") if isinstance(body, dict) else None
    if not isinstance(selection, dict):
        raise _err(400, "invalid-selection", "selection")
    name = selection.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_NAME:
        raise _err(400, "invalid-selection", "name", name)
    description = selection.get("description", "")
    external_id = selection.get("external_id")
    source = selection.get("source")
    if (
        not isinstance(description, str)
        or len(description) > MAX_NAME
        or not isinstance(external_id, str)
        or not external_id
        or (source is not None and source not in SOURCES)
    ):
        raise _err(400, "invalid-selection", "selection", name)
    types = {f["name"]: f["type"] for f in _fields(catalog)}
    filters = selection.get("filters", [])
    if not isinstance(filters, list):
        raise _err(400, "selection-has-invalid-filter", "filters")
    if len(filters) > MAX_FILTERS:
        raise _err(400, "too-many-filters", "filters", len(filters))
    clean_filters = []
    for f in filters:
        if not isinstance(f, dict) or set(f) != {"field", "operator", "value"}:
            raise _err(400, "selection-has-invalid-filter", "filters")
        field_type = types.get(f["field"]) if isinstance(f["field"], str) else None
        if field_type is None or f["operator"] not in OPERATORS.get(field_type, ()):
            raise _err(400, "selection-has-invalid-filter", "filters", f["field"])
        ok, value = _filter_value(field_type, f["operator"], f["value"])
        if not ok:
            raise _err(400, "selection-has-invalid-filter", "filters", f["field"])
        clean_filters.append({"field": f["field"], "operator": f["operator"], "value": value})
    arrays = {f["field"] for f in clean_filters if types[f["field"]] == "array"}
    if len(arrays) > 1:
        raise _err(400, "selection-contains-too-many-arrays", "filters", sorted(arrays))
    limit = selection.get("results_limit", DEFAULT_RESULTS_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RESULTS_LIMIT:
        raise _err(400, "selection-invalid-results-limit", "results_limit", limit)
    sort_field, sort_order = selection.get("sort_field"), selection.get("sort_order")
    if (sort_field is None) != (sort_order is None):
        raise _err(400, "invalid-sorting", "selection", name)
    if sort_field is not None:
        if not isinstance(sort_field, str) or types.get(sort_field) not in OPERATORS:
            raise _err(400, "invalid-sort-field", "sort_field", sort_field)
        if sort_order not in SORT_ORDERS:
            raise _err(400, "invalid-sort-order", "sort_order", sort_order)
    existing = selections(store, workspace, catalog["name"])
    if any(s["name"] == name for s in existing):
        raise _err(400, "selection-name-already-exists", "name", name)
    if len(existing) >= MAX_SELECTIONS_PER_CATALOG:
        raise _err(400, "selection-limit-reached", "selection", name)
    definition: dict[str, Any] = {
        "description": description,
        "external_id": external_id,
        "filters": clean_filters,
        "results_limit": limit,
        "sort_field": sort_field,
        "sort_order": sort_order,
    }
    if source is not None:
        definition["source"] = source
    return {"name": name, **definition}


# --- evaluation -----------------------------------------------------------------------------


def _matches(item: dict[str, Any], f: dict[str, Any]) -> bool:
    """An item without a value for the field matches no filter (README)."""
    held, op, wanted = item.get(f["field"]), f["operator"], f["value"]
    if held is None:
        return False
    if op == "equals":
        return bool(held == wanted)
    if op == "does not equal":
        return bool(held != wanted)
    if op == "greater than":
        return bool(held > wanted)
    if op == "less than":
        return bool(held < wanted)
    if op == "is":
        return bool(held is wanted)
    if op in ("before", "after"):
        moment = time_text(held)
        if moment is None:
            return False
        return bool(moment < wanted if op == "before" else moment > wanted)
    if op == "includes value":
        return isinstance(held, list) and wanted in held
    if op == "does not include value":
        return isinstance(held, list) and wanted not in held
    return False


def evaluate(items: list[dict[str, Any]], definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The items a selection returns: every filter holds (in order), sorted, limited.

    Without a sort Braze randomizes; the sandbox keeps catalog order so tests can compare.
    Items without a value for the sort field come last in either order.
    """
    chosen = [i for i in items if all(_matches(i, f) for f in definition["filters"])]
    sort_field = definition.get("sort_field")
    if sort_field:
        present = [i for i in chosen if i.get(sort_field) is not None]
        absent = [i for i in chosen if i.get(sort_field) is None]
        present.sort(key=lambda i: i[sort_field], reverse=definition.get("sort_order") == "desc")
        chosen = present + absent
    limit: int = definition["results_limit"]
    return chosen[:limit]


def selection_items(store: Store, workspace: str, catalog: str, name: str) -> list[dict[str, Any]]:
    found = [s for s in selections(store, workspace, catalog) if s["name"] == name]
    if not found:
        return []
    rows = store.q(
        "SELECT item_id, data FROM catalog_items WHERE workspace=? AND catalog=? ORDER BY pk",
        (workspace, catalog),
    )
    items = [{"id": r["item_id"], **json.loads(r["data"])} for r in rows]
    return evaluate(items, found[0])


# --- endpoints ------------------------------------------------------------------------------


def _enqueue(ctx: Ctx, catalog: str, op: str, payload: Any) -> JSONResponse:
    now = ctx.now
    ctx.store.x(
        "INSERT INTO pending_ops (workspace, catalog, op, items, accepted_at, due)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            ctx.workspace,
            catalog,
            op,
            json.dumps(payload),
            now,
            now + ctx.config.async_delay_seconds,
        ),
    )
    ctx.sandbox.wake_applier()
    return JSONResponse({"message": "success"}, status_code=202)


async def create_fields(ctx: Ctx) -> JSONResponse:
    catalog = get_catalog(ctx.store, ctx.workspace, ctx.path("catalog_name"))
    fields = validate_new_fields(catalog, await ctx.json(), reference=ctx.config.reference)
    check_storage(ctx)
    return _enqueue(ctx, catalog["name"], "create_fields", fields)


async def delete_field(ctx: Ctx) -> JSONResponse:
    catalog = get_catalog(ctx.store, ctx.workspace, ctx.path("catalog_name"))
    field_name = ctx.path("field_name")
    check_field_deletable(ctx.store, ctx.workspace, catalog, field_name)
    return _enqueue(ctx, catalog["name"], "delete_field", field_name)


async def create_selection(ctx: Ctx) -> JSONResponse:
    catalog = get_catalog(ctx.store, ctx.workspace, ctx.path("catalog_name"))
    definition = validate_selection(ctx.store, ctx.workspace, catalog, await ctx.json())
    check_storage(ctx)
    return _enqueue(ctx, catalog["name"], "create_selection", definition)


async def delete_selection(ctx: Ctx) -> JSONResponse:
    catalog = get_catalog(ctx.store, ctx.workspace, ctx.path("catalog_name"))
    name = ctx.path("selection_name")
    if not any(s["name"] == name for s in selections(ctx.store, ctx.workspace, catalog["name"])):
        raise _err(404, "invalid-selection", "selection_name", name)
    return _enqueue(ctx, catalog["name"], "delete_selection", name)


# --- applying -------------------------------------------------------------------------------


def _apply(store: Store, workspace: str, catalog: Any, op: str, payload: Any) -> bool:
    """Apply one accepted schema request; False when it no longer fits (skipped)."""
    name = catalog["name"]
    fields = _fields(catalog)
    if op == "create_fields":
        held = {f["name"] for f in fields}
        new = [f for f in payload if f["name"] not in held]
        if not new or len(fields) + len(new) > MAX_FIELDS_PER_CATALOG:
            return False
        store.x(
            "UPDATE catalogs SET fields=? WHERE workspace=? AND name=?",
            (json.dumps(fields + new), workspace, name),
        )
        _rewrite_items(store, workspace, name, add=tuple(f["name"] for f in new))
        return True
    if op == "delete_field":
        try:
            check_field_deletable(store, workspace, catalog, payload)
        except Exception:
            return False
        store.x(
            "UPDATE catalogs SET fields=? WHERE workspace=? AND name=?",
            (json.dumps([f for f in fields if f["name"] != payload]), workspace, name),
        )
        _rewrite_items(store, workspace, name, remove=payload)
        return True
    if op == "create_selection":
        types = {f["name"]: f["type"] for f in fields}
        taken = {s["name"] for s in selections(store, workspace, name)}
        if (
            payload["name"] in taken
            or len(taken) >= MAX_SELECTIONS_PER_CATALOG
            or any(f not in types for f in selection_fields(payload))
        ):
            return False
        definition = {k: v for k, v in payload.items() if k != "name"}
        store.x(
            "INSERT INTO catalog_selections (workspace, catalog, name, definition, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (workspace, name, payload["name"], json.dumps(definition), iso_now()),
        )
        return True
    if op == "delete_selection":
        return bool(
            store.db.execute(
                "DELETE FROM catalog_selections WHERE workspace=? AND catalog=? AND name=?",
                (workspace, name, payload),
            ).rowcount
        )
    return False


def _rewrite_items(
    store: Store,
    workspace: str,
    catalog: str,
    *,
    add: tuple[str, ...] = (),
    remove: str | None = None,
) -> None:
    """Items gain a new field (no value yet: ``null``) or lose a deleted one."""
    rows = store.q(
        "SELECT pk, data FROM catalog_items WHERE workspace=? AND catalog=?", (workspace, catalog)
    )
    updates = []
    for row in rows:
        data = json.loads(row["data"])
        for field_name in add:
            data.setdefault(field_name, None)
        if remove is not None:
            data.pop(remove, None)
        updates.append((json.dumps(data), row["pk"]))
    store.db.executemany("UPDATE catalog_items SET data=? WHERE pk=?", updates)


def apply_op(store: Store, op_row: Any, now: float) -> dict[str, list[str]]:
    workspace, catalog_name, op = op_row["workspace"], op_row["catalog"], op_row["op"]
    payload = json.loads(op_row["items"])
    label = (
        [f["name"] for f in payload]
        if op == "create_fields"
        else [payload["name"]]
        if op == "create_selection"
        else [payload]
    )
    store.db.execute("BEGIN")
    try:
        catalog = store.q1(
            "SELECT * FROM catalogs WHERE workspace=? AND name=?", (workspace, catalog_name)
        )
        applied = catalog is not None and _apply(store, workspace, catalog, op, payload)
        outcome = {"applied": label if applied else [], "skipped": [] if applied else label}
        if applied:
            store.x(
                "UPDATE catalogs SET updated_at=? WHERE workspace=? AND name=?",
                (iso_now(), workspace, catalog_name),
            )
        store.x(
            "INSERT INTO async_results (workspace, catalog, op, accepted_at, applied_at, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (workspace, catalog_name, op, op_row["accepted_at"], now, json.dumps(outcome)),
        )
        store.x("DELETE FROM pending_ops WHERE id=?", (op_row["id"],))
    except BaseException:
        store.db.execute("ROLLBACK")
        raise
    store.db.execute("COMMIT")
    return outcome
