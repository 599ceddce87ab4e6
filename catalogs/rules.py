"""Braze's catalog rules, checked before anything is sent (braze-facts §2.3, catalogs.md).

Each message gives Braze's own wording and its error id, so what the form says matches what
Braze would have answered.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

NAME_MAX = 250
DESCRIPTION_MAX = 250
FIELD_NAME_MAX = 250
ITEM_ID_MAX = 250
VALUE_MAX_CHARS = 5000
MAX_NESTING = 50
FIELD_TYPES = ("string", "number", "boolean", "time")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def max_fields() -> int:
    """30 in the older docs, 500 in newer ones: a setting (CATALOG_MAX_FIELDS)."""
    return int(getattr(settings, "CATALOG_MAX_FIELDS", 30))


def catalog_name_errors(name: str) -> list[str]:
    if not name:
        return ["Enter a catalog name."]
    errors = []
    if len(name) > NAME_MAX:
        errors.append(f"Character limit for a catalog name is {NAME_MAX} (catalog-name-too-large).")
    if not _NAME_RE.match(name):
        errors.append(
            "Catalog name can only include letters, numbers, hyphens, and underscores "
            "(invalid_catalog_name)."
        )
    return errors


def description_errors(description: str) -> list[str]:
    if len(description) > DESCRIPTION_MAX:
        return [f"Character limit for description is {DESCRIPTION_MAX} (description-too-long)."]
    return []


def field_name_errors(name: str) -> list[str]:
    if not name:
        return ["Enter a field name."]
    errors = []
    if len(name) > FIELD_NAME_MAX:
        errors.append(
            f"Character limit for a field name is {FIELD_NAME_MAX} (field-names-too-large)."
        )
    if not _NAME_RE.match(name):
        errors.append(
            "Fields can only include letters, numbers, hyphens, and underscores "
            "(invalid-field-names)."
        )
    return errors


def fields_errors(fields: Sequence[tuple[str, str]]) -> list[str]:
    """Rules on the field list as a whole (each name is checked by field_name_errors)."""
    errors = []
    if not fields or fields[0] != ("id", "string"):
        errors.append(
            "The id must be the first field, and its type must be string (id-not-first-column)."
        )
    names = [name for name, _type in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        errors.append(
            f"The same field name is referenced twice: {', '.join(duplicates)} "
            "(field-names-not-unique)."
        )
    bad_types = sorted({t for _name, t in fields if t not in FIELD_TYPES})
    if bad_types:
        errors.append("Make sure the field types are valid (invalid-field-types).")
    limit = max_fields()
    if len(fields) > limit:
        errors.append(f"Number of fields limit is {limit} (too-many-fields).")
    return errors


def item_id_errors(item_id: str) -> list[str]:
    if not item_id:
        return ["Enter an item ID."]
    errors = []
    if len(item_id) > ITEM_ID_MAX:
        errors.append(
            f"Character limit for each item ID is {ITEM_ID_MAX} characters (ids-too-large)."
        )
    if not _NAME_RE.match(item_id):
        errors.append(
            "Supported characters for item ID names are letters, numbers, hyphens, and "
            "underscores (invalid-ids)."
        )
    return errors


def _bad_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return any("." in str(k) or "$" in str(k) or _bad_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_keys(v) for v in value)
    return False


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def time_canonical(moment: datetime) -> str:
    """One text form for times, so the mirror sorts and compares them as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_value(field_type: str, raw: str) -> Any:
    """A form's text as the typed value Braze stores; None clears the field.

    Raises ValueError with the message to show under the field.
    """
    text = raw.strip() if field_type != "string" else raw
    if text == "":
        return None
    if field_type == "string":
        if len(text) > VALUE_MAX_CHARS:
            raise ValueError(
                f"Item values can't exceed {VALUE_MAX_CHARS:,} characters (items-too-large); "
                f"this one has {len(text):,}."
            )
        return text
    if field_type == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(
                f"“{text}” is not a number; Braze can't convert it (unable-to-coerce-value)."
            ) from None
        if not math.isfinite(number):
            raise ValueError("Enter a finite number (unable-to-coerce-value).")
        return int(number) if number.is_integer() and "." not in text else number
    if field_type == "boolean":
        if text.lower() in {"true", "false"}:
            return text.lower() == "true"
        raise ValueError("Choose true or false (unable-to-coerce-value).")
    if field_type == "time":
        try:
            return time_canonical(parse_time(text))
        except ValueError:
            raise ValueError(
                f"“{text}” is not an ISO 8601 time such as 2026-03-01T09:30:00Z "
                "(unable-to-coerce-value)."
            ) from None
    # object / array fields (API-only types): JSON text.
    try:
        value = json.loads(text)
        bad_keys, depth = _bad_keys(value), _depth(value)
    except RecursionError:  # nested deeper than Python recurses: far past Braze's limit
        bad_keys, depth = False, MAX_NESTING + 1
    except ValueError:
        raise ValueError("Enter valid JSON (unable-to-coerce-value).") from None
    if bad_keys:
        raise ValueError("Item object keys can't include . or $ (invalid-keys-in-value-object).")
    if depth > MAX_NESTING:
        raise ValueError(
            "Item objects can't have more than 50 levels of nesting "
            "(too-deep-nesting-in-value-object)."
        )
    if len(json.dumps(value)) > VALUE_MAX_CHARS:
        raise ValueError(
            f"Item values can't exceed {VALUE_MAX_CHARS:,} characters (items-too-large)."
        )
    return value


def value_as_text(field_type: str, value: Any) -> str:
    """The inverse of parse_value, for pre-filling a form."""
    if value is None:
        return ""
    if field_type == "boolean":
        return "true" if value else "false"
    if field_type in ("object", "array") or isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
