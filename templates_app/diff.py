"""Side-by-side line diffs of HTML and long text, for history and review screens."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from console.changes.diff import field_diff, is_long_text


@dataclass(frozen=True, slots=True)
class DiffRow:
    kind: str  # "same", "change", "del", "add"
    left_number: int | None
    left: str
    right_number: int | None
    right: str


def side_by_side(before: str, after: str) -> list[DiffRow]:
    a, b = before.splitlines(), after.splitlines()
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [
                DiffRow("same", i + 1, a[i], j + 1, b[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            ]
            continue
        left, right = list(range(i1, i2)), list(range(j1, j2))
        for n in range(max(len(left), len(right))):
            li = left[n] if n < len(left) else None
            ri = right[n] if n < len(right) else None
            kind = "change" if li is not None and ri is not None else "del" if ri is None else "add"
            rows.append(
                DiffRow(
                    kind,
                    li + 1 if li is not None else None,
                    a[li] if li is not None else "",
                    ri + 1 if ri is not None else None,
                    b[ri] if ri is not None else "",
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    lines: list[DiffRow] | None  # for HTML and long text


def snapshot_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    changes = []
    for row in field_diff(before, after):
        long = is_long_text(row["before"]) or is_long_text(row["after"])
        lines = side_by_side(str(row["before"] or ""), str(row["after"] or "")) if long else None
        changes.append(FieldChange(row["field"], row["before"], row["after"], lines))
    return changes
