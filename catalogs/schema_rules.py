"""Braze's rules for catalog fields and selections, checked before anything is sent.

Pages (braze-inc/braze-docs): "POST: Create catalog fields", "DELETE: Delete catalog field",
"POST: Create catalog selection", "DELETE: Delete catalog selection"
(`_docs/_api/endpoints/catalogs/catalog_fields/asynchronous/`, `…/catalog_selections/
asynchronous/`) and the "Catalog selection object" (`_docs/_api/objects_filters/
catalog_selection_object.md`). The pages give error ids and troubleshooting text, not
messages: each message here restates that text, word for word what the sandbox answers
(`tests/catalogs/test_schema_rules.py` holds the two to the same table), followed by the id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from catalogs import rules

FIELDS_PER_REQUEST = 50
MAX_FIELDS_PER_CATALOG = 500
MAX_SELECTIONS_PER_CATALOG = 30
MAX_FILTERS = 4
MAX_RESULTS_LIMIT = 50
SORT_ORDERS = ("asc", "desc")

# "Filter operators" on the create-selection page: which operators each field type takes.
OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("equals", "does not equal"),
    "number": ("equals", "does not equal", "greater than", "less than"),
    "boolean": ("is",),
    "time": ("before", "after"),
    "array": ("includes value", "does not include value"),
}

MESSAGES: dict[str, str] = {
    "request-includes-too-many-fields": "Each request can support up to 50 new fields",
    "catalog-exceeds-fields-limit": "Catalog cannot have more than 500 fields",
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


def braze_error(error_id: str, detail: str = "") -> str:
    """Braze's message and id, with what the console knows about the cause."""
    return f"{MESSAGES[error_id]}{f': {detail}' if detail else ''} ({error_id})."


def new_field_errors(
    fields: Mapping[str, str] | Sequence[tuple[str, str]], *, held: Iterable[str]
) -> list[str]:
    """Fields to add (name, type) to a catalog that holds the fields named in `held`."""
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    held_names = set(held)
    errors: list[str] = []
    if len(pairs) > FIELDS_PER_REQUEST:
        errors.append(braze_error("request-includes-too-many-fields"))
    for name, _type in pairs:
        if not rules._NAME_RE.match(name):
            errors.append(braze_error("invalid-field-names", name))
        if len(name) > rules.FIELD_NAME_MAX:
            errors.append(braze_error("field-names-too-large"))
    names = [n for n, _t in pairs]
    if len(set(names)) != len(names):
        errors.append(braze_error("field-names-not-unique"))
    taken = [n for n in names if n in held_names]
    if taken:
        errors.append(braze_error("field-already-exists", taken[0]))
    if any(t not in rules.FIELD_TYPES for _n, t in pairs):
        errors.append(braze_error("invalid-field-types"))
    if len(held_names) + len(pairs) > MAX_FIELDS_PER_CATALOG:
        errors.append(braze_error("catalog-exceeds-fields-limit"))
    return errors


def selection_fields(definition: Mapping[str, Any]) -> set[str]:
    """The fields a selection reads: its filters' and its sort field."""
    used = {str(f["field"]) for f in definition.get("filters", [])}
    if definition.get("sort_field"):
        used.add(str(definition["sort_field"]))
    return used


def field_delete_errors(
    field_name: str,
    *,
    fields: Iterable[str],
    selections: Mapping[str, Mapping[str, Any]],
    inventory: Iterable[str] = (),
) -> list[str]:
    """`selections`: name -> definition of every selection the console knows in the catalog;
    `inventory`: the fields Braze has refused to delete as inventory fields."""
    if field_name == "id" or field_name not in set(fields):
        return [braze_error("invalid-field-name", field_name)]
    if field_name in set(inventory):
        return [braze_error("field-is-inventory", field_name)]
    users = sorted(n for n, d in selections.items() if field_name in selection_fields(d))
    if users:
        return [braze_error("field-referenced-by-selection", ", ".join(users))]
    return []


def filter_value(field_type: str, value: Any) -> tuple[bool, Any]:
    """A filter's value as the field's type holds it, or (False, None)."""
    if field_type in ("string", "array"):
        return (True, value) if isinstance(value, str) else (False, None)
    if field_type == "number":
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int | float):
            return (True, value) if math.isfinite(value) else (False, None)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return False, None
            if not math.isfinite(number):
                return False, None
            return True, int(number) if number.is_integer() else number
        return False, None
    if field_type == "boolean":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return True, value.lower() == "true"
        return False, None
    if field_type == "time":
        if not isinstance(value, str):
            return False, None
        try:
            return True, rules.time_canonical(rules.parse_time(value))
        except ValueError:
            return False, None
    return False, None


def selection_errors(
    definition: Mapping[str, Any],
    *,
    types: Mapping[str, str],
    taken: Iterable[str],
) -> list[str]:
    """A selection definition (name, filters, results_limit, sort_field, sort_order) against
    the catalog's field types and the names of the selections it holds."""
    errors: list[str] = []
    name = definition.get("name")
    if not isinstance(name, str) or not rules._NAME_RE.match(name) or len(name) > 250:
        errors.append(braze_error("invalid-selection", "letters, numbers, hyphens, underscores"))
    taken_names = set(taken)
    if name in taken_names:
        errors.append(braze_error("selection-name-already-exists", str(name)))
    elif len(taken_names) >= MAX_SELECTIONS_PER_CATALOG:
        errors.append(braze_error("selection-limit-reached", f"{MAX_SELECTIONS_PER_CATALOG}"))
    filters = list(definition.get("filters", []))
    if len(filters) > MAX_FILTERS:
        errors.append(braze_error("too-many-filters", f"at most {MAX_FILTERS}"))
    for f in filters:
        field_type = types.get(str(f.get("field")))
        if (
            field_type is None
            or f.get("operator") not in OPERATORS.get(field_type, ())
            or not filter_value(field_type, f.get("value"))[0]
        ):
            errors.append(braze_error("selection-has-invalid-filter", str(f.get("field"))))
    arrays = {str(f.get("field")) for f in filters if types.get(str(f.get("field"))) == "array"}
    if len(arrays) > 1:
        errors.append(braze_error("selection-contains-too-many-arrays"))
    limit = definition.get("results_limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RESULTS_LIMIT:
        errors.append(braze_error("selection-invalid-results-limit", "1 to 50"))
    sort_field, sort_order = definition.get("sort_field"), definition.get("sort_order")
    if bool(sort_field) != bool(sort_order):
        errors.append(braze_error("invalid-sorting", "a sort field needs an order"))
    elif sort_field:
        if types.get(str(sort_field)) not in OPERATORS:
            errors.append(braze_error("invalid-sort-field", str(sort_field)))
        if sort_order not in SORT_ORDERS:
            errors.append(braze_error("invalid-sort-order", str(sort_order)))
    return errors


def _matches(item: Mapping[str, Any], f: Mapping[str, Any], field_type: str) -> bool:
    """An item without a value for the field matches no filter (as the sandbox holds)."""
    held = item.get(f["field"])
    if held is None:
        return False
    op = f["operator"]
    ok, wanted = filter_value(field_type, f["value"])
    if not ok:
        return False
    if field_type == "time":
        try:
            held = rules.time_canonical(rules.parse_time(str(held)))
        except ValueError:
            return False
    if op in ("equals", "is"):
        return bool(held == wanted)
    if op == "does not equal":
        return bool(held != wanted)
    if op in ("greater than", "after"):
        return bool(held > wanted)
    if op in ("less than", "before"):
        return bool(held < wanted)
    if op == "includes value":
        return isinstance(held, list) and wanted in held
    if op == "does not include value":
        return isinstance(held, list) and wanted not in held
    return False


def selection_evaluate(
    items: Iterable[Mapping[str, Any]],
    definition: Mapping[str, Any],
    *,
    types: Mapping[str, str],
) -> list[Mapping[str, Any]]:
    """The items a selection returns from `items` (each with "id"): every filter holds, then
    the sort (items without the sort field last), then the limit. Without a sort Braze
    randomizes: the given order is kept."""
    filters = list(definition.get("filters", []))
    chosen = [i for i in items if all(_matches(i, f, types.get(f["field"], "")) for f in filters)]
    sort_field = definition.get("sort_field")
    if sort_field:
        present = [i for i in chosen if i.get(sort_field) is not None]
        absent = [i for i in chosen if i.get(sort_field) is None]
        present.sort(key=lambda i: i[sort_field], reverse=definition.get("sort_order") == "desc")
        chosen = present + absent
    limit = definition.get("results_limit") or MAX_RESULTS_LIMIT
    return chosen[: int(limit)]
