"""Every audit action is named once, in console/audit/events.py, and writers use those names."""

import ast
import re
from pathlib import Path

from console.audit import events
from tests.test_import_graph import project_packages

ROOT = Path(__file__).resolve().parents[3]
CODE = tuple(project_packages())
ACTION_NAME = re.compile(r"^[a-z_]+\.[a-z_]+$")


def _action_names() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(events).items()
        if name.isupper() and isinstance(value, str)
    }


def test_every_action_name_is_distinct_and_dotted() -> None:
    names = _action_names()
    assert len(set(names.values())) == len(names)
    assert all(ACTION_NAME.match(value) for value in names.values()), names


def test_the_change_request_actions_are_named_in_full() -> None:
    # A search for the stored name finds this constant, and through it every writer.
    assert events.CHANGE_REQUEST_APPROVED == "change_request.approved"
    assert events.CATALOG_BULK_PAUSED == "catalog_bulk.paused"


def _written_actions() -> list[tuple[str, ast.expr]]:
    found = []
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    for keyword in node.keywords:
                        if keyword.arg == "action":
                            for value in _alternatives(keyword.value):
                                found.append((f"{where}:{node.lineno}", value))
    return found


def _alternatives(value: ast.expr) -> list[ast.expr]:
    """The values an expression may take: both sides of `a if c else b`."""
    if isinstance(value, ast.IfExp):
        return [*_alternatives(value.body), *_alternatives(value.orelse)]
    return [value]


def test_no_writer_spells_an_action_name_itself() -> None:
    spelled = [
        where
        for where, value in _written_actions()
        if isinstance(value, ast.JoinedStr)
        or (
            isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and ACTION_NAME.match(value.value)
        )
    ]
    assert not spelled, "use a constant from console/audit/events.py:\n" + "\n".join(spelled)


def test_audit_append_is_always_given_a_named_action() -> None:
    literal = []
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "audit_append"
                ):
                    action = next(k.value for k in node.keywords if k.arg == "action")
                    if any(
                        isinstance(value, ast.Constant | ast.JoinedStr)
                        for value in _alternatives(action)
                    ):
                        literal.append(f"{where}:{node.lineno}")
    assert not literal, "\n".join(literal)
