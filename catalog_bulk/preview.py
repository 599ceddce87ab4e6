"""The dry run: what each valid row would change in the mirror, and so what must be sent.

Only changes are sent (delta updates): an upsert or update row whose values the mirror
already holds is "unchanged" and never spends quota.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from catalog_bulk.models import BulkOperation, RowOp
from catalogs import rules

ALREADY_EXISTS = "An item with this id is already in the catalog (item-already-exists)."
NOT_FOUND = "This item is not in the catalog, so it cannot be updated (item-not-found)."


# A tuple, not a frozen dataclass: built for every row of a parse, where a frozen
# dataclass's __init__ costs twice as much.
class Planned(NamedTuple):
    op: str  # RowOp
    kind: str  # create / update / unchanged / delete / error: the preview's counts
    payload: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    error: str = ""


def same_value(field_type: str | None, a: Any, b: Any) -> bool:
    """Whether two values of a field are the same (times compare as instants)."""
    return rules.same_value(field_type, a, b)


def _changes(
    values: Mapping[str, Any], current: Mapping[str, Any], types: Mapping[str, str]
) -> dict[str, Any]:
    """The values that change the item; array operators count when they change the list."""
    changed = {}
    for key, value in values.items():
        held = current.get(key)
        if held == value and type(value) is not dict:
            continue  # same_value's first test, without the calls (most cells of a re-upload)
        after = rules.apply_array_ops(held, value) if rules.is_array_ops(value) else value
        if not same_value(types.get(key), held, after):
            changed[key] = value
    return changed


def plan_row(
    *,
    operation: str,
    values: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    types: Mapping[str, str],
) -> Planned:
    """What to send for one valid row, given the mirror's copy (None: not in the mirror)."""
    given = {k: v for k, v in values.items() if v is not None}
    if operation == BulkOperation.DELETE:
        if current is None:
            return Planned(RowOp.UNCHANGED, "unchanged")  # nothing to delete
        return Planned(RowOp.DELETE, "delete", before=dict(current))
    if operation == BulkOperation.REPLACE:
        if current is None:
            return Planned(RowOp.REPLACE, "create", payload=given)
        if not _changes(given, current, types) and set(current) <= set(given):
            return Planned(RowOp.UNCHANGED, "unchanged")
        return Planned(RowOp.REPLACE, "update", payload=given, before=dict(current))
    if current is None:
        if operation == BulkOperation.UPDATE:
            return Planned(RowOp.ERROR, "error", error=NOT_FOUND)
        return Planned(RowOp.CREATE, "create", payload=given)
    if operation == BulkOperation.CREATE:
        return Planned(RowOp.ERROR, "error", error=ALREADY_EXISTS)
    changed = _changes(values, current, types)
    if not changed:
        return Planned(RowOp.UNCHANGED, "unchanged")
    return Planned(
        RowOp.UPDATE, "update", payload=changed, before={k: current.get(k) for k in changed}
    )


def row_kind(op: str, before: Any) -> str:
    """The preview count a stored row belongs to."""
    if op == RowOp.REPLACE:
        return "create" if before is None else "update"
    return str(op)
