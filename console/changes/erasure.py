"""Erasing a person's values from change requests (part of the audit trail's erasure).

A change request about a person (a Braze dashboard user, say) keeps their email and names
in its payload, snapshots, diff and title. Erasure replaces each of those values with a
marker wherever the request stores it. Its `payload_hash` and the reviews' hashes stay:
they are keyed digests made when the payload was written (`diff.payload_hash`), so they
neither give the values back nor need them again once the request is closed.
"""

import re
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from console.changes.models import OPEN_STATES, ChangeRequest, ChangeState, Comment, Review
from console.changes.resource_types import resource_type_get, resource_types_registered

MARKER = "[erased]"
_JSON_COLUMNS = ("payload", "base_snapshot", "current_snapshot", "diff", "braze_response")
_MIN_LENGTH = 2  # a one-letter name would mark every such letter in a title


class ErasureRefused(ValueError):
    """The person is named by a change request that is still open; the message says which."""


def _personal_types(field: str) -> list[str]:
    return [rt.key for rt in resource_types_registered() if field in rt.personal_fields]


def _same(field: str, stored: object, value: str) -> bool:
    if not isinstance(stored, str):
        return False
    text = stored.strip()
    return text.lower() == value if field == "email" else text == value


def _held(obj: Any, field: str, value: str) -> bool:
    """Whether `obj` holds `value` as `field`: under that key at any depth, or as the
    before/after of a diff row about that field."""
    if isinstance(obj, dict):
        if field in obj and _same(field, obj[field], value):
            return True
        if obj.get("field") == field and (
            _same(field, obj.get("before"), value) or _same(field, obj.get("after"), value)
        ):
            return True
        return any(_held(v, field, value) for v in obj.values())
    if isinstance(obj, list):
        return any(_held(v, field, value) for v in obj)
    return False


def _values(obj: Any, fields: frozenset[str], found: set[str]) -> set[str]:
    """Every value stored under one of `fields` (the person's email, names, ...)."""
    if isinstance(obj, dict):
        for key, item in obj.items():
            if key in fields and isinstance(item, str):
                found.add(item)
        if obj.get("field") in fields:
            found.update(v for v in (obj.get("before"), obj.get("after")) if isinstance(v, str))
        for item in obj.values():
            _values(item, fields, found)
    elif isinstance(obj, list):
        for item in obj:
            _values(item, fields, found)
    return found


def _pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({v.strip() for v in values if len(v.strip()) >= _MIN_LENGTH}, key=len)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in reversed(words))  # longest first
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _scrub(obj: Any, fields: frozenset[str], pattern: re.Pattern[str] | None) -> Any:
    if isinstance(obj, dict):
        is_row = obj.get("field") in fields
        return {
            key: (
                MARKER
                if item is not None and (key in fields or (is_row and key in ("before", "after")))
                else _scrub(item, fields, pattern)
            )
            for key, item in obj.items()
        }
    if isinstance(obj, list):
        return [_scrub(item, fields, pattern) for item in obj]
    if isinstance(obj, str) and pattern is not None:
        return pattern.sub(MARKER, obj)
    return obj


def _text(text: str, pattern: re.Pattern[str] | None) -> str:
    return pattern.sub(MARKER, text) if pattern is not None else text


def change_requests_personal_erase(*, field: str, value: str) -> list[int]:
    """Replace a person's values in every change request about them; their ids.

    `value` is in the form erasure matches (email addresses lower case). A request is
    about the person when it holds `value` as `field`; then all of its personal fields
    (the same person's names beside the email) are erased, in the JSON columns, the title,
    the error text and its comments. Open requests are refused: their payload is still to
    be reviewed or applied.
    """
    types = _personal_types(field)
    if not types:
        return []
    with transaction.atomic():
        matched = [
            cr
            for cr in ChangeRequest.objects.select_for_update()
            .filter(resource_type__in=types)
            .order_by("pk")
            if any(
                _held(column, field, value)
                for column in (cr.payload, cr.base_snapshot, cr.current_snapshot, cr.diff)
            )
        ]
        still_open = [cr.pk for cr in matched if cr.state in OPEN_STATES | {ChangeState.APPLYING}]
        if still_open:
            numbers = ", ".join(f"#{pk}" for pk in still_open)
            raise ErasureRefused(
                f"Change request {numbers} about this person is still open: finish or cancel "
                "it first, then erase. Nothing was erased."
            )
        for cr in matched:
            fields = resource_type_get(cr.resource_type).personal_fields
            found: set[str] = {value}
            for column in (cr.payload, cr.base_snapshot, cr.current_snapshot, cr.diff):
                _values(column, fields, found)
            pattern = _pattern(found)
            cr.title = _text(cr.title, pattern)
            cr.error_message = _text(cr.error_message, pattern)
            for column in _JSON_COLUMNS:
                setattr(cr, column, _scrub(getattr(cr, column), fields, pattern))
            # Only these columns: the erasure is recorded by its audit entry, and the
            # request's own times (updated, applied) stay what they were.
            cr.save(update_fields=["title", "error_message", *_JSON_COLUMNS])
            for comment in Comment.objects.filter(change_request=cr):
                comment.body = _text(comment.body, pattern)
                comment.save(update_fields=["body"])
            for review in Review.objects.filter(change_request=cr).exclude(comment=""):
                review.comment = _text(review.comment, pattern)
                review.save(update_fields=["comment"])
    return [cr.pk for cr in matched]
