"""Braze's catalog rules, checked before anything is sent (braze-facts §2.3, catalogs.md).

Each message gives Braze's own wording and its error id, so what the form says matches what
Braze would have answered.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

NAME_MAX = 250
DESCRIPTION_MAX = 250
FIELD_NAME_MAX = 250
ITEM_ID_MAX = 250
VALUE_MAX_CHARS = 5000
ITEM_MAX_CHARS = 5000
MAX_NESTING = 50
ARRAY_MAX_ELEMENTS = 100
# Reference: "Creating a catalog" (_docs/_user_guide/data/activation/catalogs/create.md),
# supported data types. Object and array values can be written only through the API (so
# through the console), not by Braze's own CSV upload; geolocation is [longitude, latitude].
FIELD_TYPES = ("string", "number", "boolean", "time", "object", "array", "geolocation")
# PATCH operators on array fields ("PATCH: Edit catalog item" and "PATCH: Edit multiple
# catalog items"): values to add and values to remove, leaving the others as Braze holds them.
ARRAY_ADD, ARRAY_REMOVE = "$add", "$remove"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def max_fields() -> int:
    """500 in today's create-catalog page, 30 in older docs: a setting (CATALOG_MAX_FIELDS)."""
    return int(getattr(settings, "CATALOG_MAX_FIELDS", 500))


def catalog_name_errors(name: str) -> list[str]:
    if not name:
        return ["Enter a catalog name."]
    errors = []
    if len(name) > NAME_MAX:
        errors.append(f"Character limit for a catalog name is {NAME_MAX} (catalog-name-too-large).")
    if not _NAME_RE.match(name):
        errors.append(
            "Catalog name can only include letters, numbers, hyphens, and underscores "
            "(invalid-catalog-name)."
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


def item_id_plain(item_id: str) -> bool:
    """Whether an id has only the characters Braze allows (its length apart)."""
    return _NAME_RE.match(item_id) is not None


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
    # object, array and geolocation fields: JSON text.
    try:
        value = json.loads(text)
    except RecursionError:  # nested deeper than Python recurses: far past Braze's limit
        raise ValueError(_TOO_DEEP) from None
    except ValueError:
        raise ValueError("Enter valid JSON (unable-to-coerce-value).") from None
    return check_json_value(field_type, value)


_TOO_DEEP = (
    "Item objects can't have more than 50 levels of nesting (too-deep-nesting-in-value-object)."
)


def check_json_value(field_type: str, value: Any) -> Any:
    """An object, array or geolocation value as Braze stores it (ValueError: the reason)."""
    if value is None:
        return None
    if field_type == "array":
        if is_array_ops(value):
            raise ValueError(
                f"{ARRAY_ADD} and {ARRAY_REMOVE} change an item Braze already holds: use them "
                "in an update only (invalid-keys-in-value-object)."
            )
        return check_array(value)
    if field_type == "geolocation":
        return check_geolocation(value)
    if field_type == "object" and not isinstance(value, dict):
        raise ValueError('Expected a JSON object, e.g. {"size": "M"} (unable-to-coerce-value).')
    try:
        bad_keys, depth = _bad_keys(value), _depth(value)
    except RecursionError:  # nested deeper than Python recurses: far past Braze's limit
        bad_keys, depth = False, MAX_NESTING + 1
    if bad_keys:
        raise ValueError("Item object keys can't include . or $ (invalid-keys-in-value-object).")
    if depth > MAX_NESTING:
        raise ValueError(_TOO_DEEP)
    if len(json.dumps(value)) > VALUE_MAX_CHARS:
        raise ValueError(
            f"Item values can't exceed {VALUE_MAX_CHARS:,} characters (items-too-large)."
        )
    return value


def check_array(value: Any) -> list[str]:
    """Catalog arrays hold strings only, at most 100 of them."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(
            'Expected a list of text values, e.g. ["red", "blue"] (unable-to-coerce-value).'
        )
    if len(value) > ARRAY_MAX_ELEMENTS:
        raise ValueError(
            f"An array holds at most {ARRAY_MAX_ELEMENTS} values; this one has {len(value)} "
            "(unable-to-coerce-value)."
        )
    if len(json.dumps(value)) > VALUE_MAX_CHARS:
        raise ValueError(
            f"Item values can't exceed {VALUE_MAX_CHARS:,} characters (items-too-large)."
        )
    return list(value)


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_geolocation(value: Any) -> list[float]:
    """``[longitude, latitude]``: longitude within ±180, latitude within ±90."""
    if not isinstance(value, list) or len(value) != 2 or not all(_finite_number(v) for v in value):
        raise ValueError(
            "Expected [longitude, latitude], e.g. [-73.988, 40.779] (unable-to-coerce-value)."
        )
    longitude, latitude = value
    if not -180 <= longitude <= 180:
        raise ValueError(
            f"Longitude must be between -180 and 180; {longitude} is not (unable-to-coerce-value)."
        )
    if not -90 <= latitude <= 90:
        raise ValueError(
            f"Latitude must be between -90 and 90; {latitude} is not (unable-to-coerce-value)."
        )
    return [longitude, latitude]


def is_array_ops(value: Any) -> bool:
    """``{"$add": [...], "$remove": [...]}`` (either or both): a PATCH of an array field."""
    return isinstance(value, dict) and bool(value) and set(value) <= {ARRAY_ADD, ARRAY_REMOVE}


def check_array_ops(value: Any) -> dict[str, list[str]]:
    """Operators as sent to Braze (ValueError: the reason)."""
    if not is_array_ops(value):
        raise ValueError(
            f'Use {ARRAY_ADD} and {ARRAY_REMOVE} only, e.g. {{"{ARRAY_ADD}": ["red"]}} '
            "(invalid-keys-in-value-object)."
        )
    ops = {key: check_array(values) for key, values in value.items()}
    both = sorted(set(ops.get(ARRAY_ADD, [])) & set(ops.get(ARRAY_REMOVE, [])))
    if both:
        raise ValueError(f"{', '.join(both)}: both added and removed; choose one.")
    return ops


def apply_array_ops(current: Any, ops: Mapping[str, Any]) -> list[str]:
    """The array after the operators, as the sandbox applies them: ``$remove`` drops every
    occurrence, ``$add`` appends the values not already held."""
    removed = set(ops.get(ARRAY_REMOVE, []))
    result = [v for v in (current if isinstance(current, list) else []) if v not in removed]
    result += [v for v in dict.fromkeys(ops.get(ARRAY_ADD, [])) if v not in result]
    return result


def array_ops_for(before: Any, after: list[str]) -> dict[str, list[str]] | list[str]:
    """What to PATCH to turn ``before`` into ``after``: operators when they say it exactly
    (so values someone else adds meanwhile are kept), else the whole list."""
    held = before if isinstance(before, list) else []
    ops: dict[str, list[str]] = {}
    added = [v for v in after if v not in held]
    removed = [v for v in dict.fromkeys(held) if v not in after]
    if added:
        ops[ARRAY_ADD] = added
    if removed:
        ops[ARRAY_REMOVE] = removed
    if not ops or apply_array_ops(held, ops) != after:
        return list(after)  # a reorder or duplicates: operators cannot say it
    return ops


def merge_values(current: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH's values over an item, with array operators applied."""
    merged = dict(current)
    for key, value in values.items():
        merged[key] = apply_array_ops(current.get(key), value) if is_array_ops(value) else value
    return merged


def item_chars(values: Mapping[str, Any]) -> int:
    """An item's size as Braze's 5,000-character limit counts it: each value's text."""
    return sum(
        len(v) if isinstance(v, str) else len(json.dumps(v))
        for v in values.values()
        if v is not None
    )


def item_size_errors(values: Mapping[str, Any]) -> list[str]:
    """The synchronous item pages limit the whole item ("Character limit for each item is
    5,000 characters"), the asynchronous ones each value. The single-item form writes
    through the synchronous endpoints, so it keeps the whole item within the limit."""
    size = item_chars(values)
    if size > ITEM_MAX_CHARS:
        return [
            f"Character limit for each item is {ITEM_MAX_CHARS:,} characters (items-too-large); "
            f"this item has {size:,}."
        ]
    return []


def canonical_value(field_type: str | None, value: Any) -> Any:
    """One form per value, so equal values compare equal as text (times: UTC milliseconds)."""
    if field_type == "time" and isinstance(value, str):
        try:
            return time_canonical(parse_time(value))
        except ValueError:
            return value
    return value


def canonical_item(types: Mapping[str, str], data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: canonical_value(types.get(k), v) for k, v in data.items()}


def same_value(field_type: str | None, a: Any, b: Any) -> bool:
    """Whether two values of a field are the same: times compare as instants, so Braze's
    ``…Z`` and the console's ``…+00:00`` are one value. Used wherever the console asks
    "did this change?" (mirror sync, proposals, bulk preview, read-back, apply checks)."""
    if a == b:
        return True
    if field_type == "time" and isinstance(a, str) and isinstance(b, str):
        try:
            return parse_time(a) == parse_time(b)
        except ValueError:
            return False
    return False


def same_item(types: Mapping[str, str], a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return set(a) == set(b) and all(same_value(types.get(k), a[k], b[k]) for k in a)


def value_as_text(field_type: str, value: Any) -> str:
    """The inverse of parse_value, for pre-filling a form."""
    if value is None:
        return ""
    if field_type == "boolean":
        return "true" if value else "false"
    if field_type in ("object", "array", "geolocation") or isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
