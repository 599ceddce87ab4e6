"""Checks of one uploaded row against the catalog's schema, with Braze's rules.

The rules themselves (id format, value length, types, nesting) are `catalogs.rules`: a bulk
row is refused for exactly what a single-item form refuses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from catalog_bulk import parsing
from catalog_bulk.models import BulkOperation
from catalogs import rules
from console.spreadsheet import cell_restored


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


type _Cell = Callable[[str], Any]


def _string_cell(raw: str) -> Any:
    if raw[:1] == "'":
        raw = cell_restored(raw)
    if raw == "":
        return None
    if len(raw) > rules.VALUE_MAX_CHARS:
        return rules.parse_value("string", raw)  # raises with Braze's wording
    return raw


def _number_cell(raw: str) -> Any:
    text = (cell_restored(raw) if raw[:1] == "'" else raw).strip()
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return rules.parse_value("number", text)  # raises with Braze's wording
    return int(number) if number.is_integer() and "." not in text else number


def _boolean_cell(raw: str) -> Any:
    text = (cell_restored(raw) if raw[:1] == "'" else raw).strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "":
        return None
    return rules.parse_value("boolean", text)  # raises with Braze's wording


def _cell_reader(field_type: str, operation: str) -> _Cell:
    """One column's check: what ``check_row`` does for a CSV cell of this type, the common
    types without the per-cell dispatch, the others through ``rules.parse_value`` itself."""
    if field_type == "array" and operation == BulkOperation.UPDATE:

        def array_cell(raw: str) -> Any:
            raw = cell_restored(raw)
            ops = _array_ops(raw, True)
            return ops if ops is not None else rules.parse_value("array", raw)

        return array_cell
    fast = {"string": _string_cell, "number": _number_cell, "boolean": _boolean_cell}
    if field_type in fast:
        return fast[field_type]
    return lambda raw: rules.parse_value(field_type, cell_restored(raw))


class CsvRowChecker:
    """``check_row`` for the records of one CSV file, prepared once from its header.

    Every record has the header's columns, so which are unknown (and their messages) is
    decided once; each known column gets its type's check. The verdicts, messages and their
    order are ``check_row``'s (tests/catalog_bulk/test_csv_checker.py holds them together).
    """

    def __init__(self, *, header: Sequence[str], types: Mapping[str, str], operation: str) -> None:
        named = settings.BULK_UNKNOWN_COLUMNS_NAMED
        self.operation = operation
        self.id_index = header.index("id")
        self.keep = [i for i, name in enumerate(header) if name != parsing.ERRORS_COLUMN]
        self.header = list(header)
        # (index, name, check or None for an unknown column, its message or "")
        self.columns: list[tuple[int, str, _Cell | None, str]] = []
        unknown = 0
        for i in self.keep:
            name = header[i]
            if name == "id":
                continue
            field_type = types.get(name)
            if field_type is None:
                unknown += 1
                message = (
                    f"Column “{name}” is not a field of this catalog (invalid-fields)."
                    if unknown <= named
                    else ""
                )
                self.columns.append((i, name, None, message))
            else:
                self.columns.append((i, name, _cell_reader(field_type, operation), ""))
        self.more = (
            [f"…and {unknown - named:,} more columns that are not fields of this catalog."]
            if unknown > named
            else []
        )
        # Without unknown columns (the usual file) a record's check is its known columns' only.
        self.known: list[tuple[int, str, _Cell]] | None = (
            None
            if unknown
            else [(i, name, reader) for i, name, reader, _ in self.columns if reader]
        )

    def values(self, cells: Sequence[str]) -> dict[str, str]:
        """The record as ``read_csv`` gives it: ``{column: text}``, formula quotes removed."""
        header = self.header
        return {header[i]: cell_restored(cells[i]) for i in self.keep}

    def item_id(self, cells: Sequence[str]) -> str:
        """The id ``check`` finds in a record with the header's width (any text otherwise)."""
        return cell_restored(cells[self.id_index] if len(cells) > self.id_index else "").strip()

    def check(self, cells: Sequence[str]) -> tuple[str, dict[str, Any], list[str]]:
        """``(item id, typed values, errors)`` of a record with the header's width."""
        raw_id = cell_restored(cells[self.id_index])
        item_id = raw_id.strip()
        if not item_id:
            return "", {}, ["The id is missing: every row needs one (items-missing-ids)."]
        if len(item_id) <= rules.ITEM_ID_MAX and rules.item_id_plain(item_id):
            errors: list[str] = []
        else:
            errors = rules.item_id_errors(item_id)
        if self.operation == BulkOperation.DELETE:
            return item_id[:300], {}, errors
        typed: dict[str, Any] = {}
        if self.known is not None:
            for i, name, read in self.known:
                try:
                    typed[name] = read(cells[i])
                except ValueError as exc:
                    errors.append(f"Column “{name}”: {exc}")
            return item_id[:300], typed, errors
        for i, name, reader, message in self.columns:
            if reader is None:
                if message:
                    errors.append(message)
                continue
            try:
                typed[name] = reader(cells[i])
            except ValueError as exc:
                errors.append(f"Column “{name}”: {exc}")
        if self.more:
            errors += self.more
        return item_id[:300], typed, errors
