"""Field-level, line-level and three-way differences for the review screens."""

import difflib
from typing import Any

from django.conf import settings

from console.audit.hashing import canonical_json, keyed_digest

LONG_TEXT = 80


def payload_hash(*, resource_type: str, identifier: str, action: str, payload: Any) -> str:
    """The version of a proposal approvals are bound to (and the audit trail chains).

    Keyed with a key derived from AUDIT_CHAIN_KEY: a payload may hold a person's email, and
    a plain SHA-256 of it would confirm a guess (and outlive the erasure of the value).
    """
    content = canonical_json([resource_type, identifier, action, payload])
    return keyed_digest(settings.AUDIT_CHAIN_KEY, "change-request-payload", content)


def same(a: Any, b: Any) -> bool:
    return canonical_json(a) == canonical_json(b)


def field_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per changed field: {"field", "before", "after", "change"}."""
    before, after = before or {}, after or {}
    rows = []
    for key in sorted(set(before) | set(after)):
        if key in before and key in after and same(before[key], after[key]):
            continue
        change = "added" if key not in before else "removed" if key not in after else "changed"
        rows.append(
            {"field": key, "before": before.get(key), "after": after.get(key), "change": change}
        )
    return rows


def three_way(
    base: dict[str, Any] | None, current: dict[str, Any] | None, proposed: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Fields where Braze moved since the proposal, or the proposal changes something."""
    base, current, proposed = base or {}, current or {}, proposed or {}
    rows = []
    for key in sorted(set(base) | set(current) | set(proposed)):
        b, c, p = base.get(key), current.get(key), proposed.get(key)
        theirs, ours = not same(b, c), not same(b, p)
        if theirs or ours:
            rows.append(
                {
                    "field": key,
                    "base": b,
                    "current": c,
                    "proposed": p,
                    "theirs": theirs,
                    "ours": ours,
                    "clash": theirs and ours and not same(c, p),
                }
            )
    return rows


def is_long_text(value: Any) -> bool:
    return isinstance(value, str) and (len(value) > LONG_TEXT or "\n" in value or "<" in value)


def line_diff(before: Any, after: Any) -> list[tuple[str, str]]:
    """(kind, line) pairs, kind in {"same", "del", "add"}, for HTML and long text."""
    a = str(before or "").splitlines() or [""]
    b = str(after or "").splitlines() or [""]
    result: list[tuple[str, str]] = []
    for line in difflib.ndiff(a, b):
        tag, text = line[:2], line[2:]
        if tag == "- ":
            result.append(("del", text))
        elif tag == "+ ":
            result.append(("add", text))
        elif tag == "  ":
            result.append(("same", text))
    return result
