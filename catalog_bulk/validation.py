"""Checks of one uploaded row against the catalog's schema, with Braze's rules.

The rules themselves (id format, value length, types, nesting) are `catalogs.rules`: a bulk
row is refused for exactly what a single-item form refuses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from catalog_bulk.models import BulkOperation
from catalogs import rules


@dataclass
class CheckedRow:
    item_id: str
    values: dict[str, Any] = field(default_factory=dict)  # typed; None clears a field
    errors: list[str] = field(default_factory=list)


def _json_value(field_type: str, value: Any) -> Any:
    """A JSON Lines value as the typed value Braze stores (ValueError: the reason)."""
    if value is None:
        return None
    if isinstance(value, str):
        return rules.parse_value(field_type, value)
    if field_type == "string":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Expected text (unable-to-coerce-value).")
        return rules.parse_value("string", str(value))
    if field_type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Expected a number (unable-to-coerce-value).")
        if not math.isfinite(value):
            raise ValueError("Enter a finite number (unable-to-coerce-value).")
        return value
    if field_type == "boolean":
        if not isinstance(value, bool):
            raise ValueError("Expected true or false (unable-to-coerce-value).")
        return value
    if field_type == "time":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Expected an ISO 8601 time or Unix seconds (unable-to-coerce-value).")
        return rules.time_canonical(datetime.fromtimestamp(value, UTC))
    if field_type in ("object", "array", "geolocation"):
        return rules.check_json_value(field_type, value)
    raise ValueError(f"The catalog field type {field_type!r} is unknown.")


def _array_ops(raw: Any, from_csv: bool) -> dict[str, list[str]] | None:
    """``$add``/``$remove`` given for an array field (an update row), or None for a value.

    In a CSV cell the operators are JSON text, e.g. ``{"$add": ["red"]}``.
    """
    value = raw
    if from_csv and isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            value = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    return rules.check_array_ops(value)


def check_row(
    *,
    values: Mapping[str, Any],
    types: Mapping[str, str],
    operation: str,
    from_csv: bool,
) -> CheckedRow:
    """The row's id and typed values, or the reasons Braze would refuse it."""
    raw_id = values.get("id")
    errors: list[str] = []
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        return CheckedRow(
            "", errors=["The id is missing: every row needs one (items-missing-ids)."]
        )
    if not isinstance(raw_id, str):
        errors.append('The id must be text, e.g. "sku-1" (ids-not-strings).')
        item_id = json.dumps(raw_id)[:300]
    else:
        item_id = raw_id.strip() if from_csv else raw_id
        errors += rules.item_id_errors(item_id)
    if operation == BulkOperation.DELETE:
        # Deletes send ids only: other columns are neither checked nor sent.
        return CheckedRow(item_id[:300], errors=errors)
    typed: dict[str, Any] = {}
    unknown = 0
    for name, raw in values.items():
        if name == "id":
            continue
        field_type = types.get(name)
        if field_type is None:
            # Named up to a few per row: a row of a million made-up keys gets one line more.
            unknown += 1
            if unknown <= settings.BULK_UNKNOWN_COLUMNS_NAMED:
                errors.append(f"Column “{name}” is not a field of this catalog (invalid-fields).")
            continue
        try:
            ops = (
                _array_ops(raw, from_csv)
                if field_type == "array" and operation == BulkOperation.UPDATE
                else None
            )
            if ops is not None:
                typed[name] = ops
            else:
                typed[name] = (
                    rules.parse_value(field_type, raw) if from_csv else _json_value(field_type, raw)
                )
        except ValueError as exc:
            errors.append(f"Column “{name}”: {exc}")
    if unknown > settings.BULK_UNKNOWN_COLUMNS_NAMED:
        more = unknown - settings.BULK_UNKNOWN_COLUMNS_NAMED
        errors.append(f"…and {more:,} more columns that are not fields of this catalog.")
    return CheckedRow(item_id[:300], typed, errors)
