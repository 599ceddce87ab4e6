"""The app's modules depend one way: each imports only modules below it, at the top."""

import ast
from pathlib import Path

import catalog_bulk

APP = Path(catalog_bulk.__file__).parent

# Lower first. tasks sits on top: a task imports the step it runs, and the modules that
# enqueue one name it (console.celery.task_enqueue) instead of importing it.
LAYERS = [
    {"models", "parsing", "uploads"},
    {"preview", "validation", "forms"},
    {"states"},
    {"outbox"},
    {"readback"},
    {"senders", "selectors", "metrics"},
    {"services"},
    {"retention", "appliers", "views"},
    {"apps", "urls", "tasks"},
]
RANK = {module: rank for rank, layer in enumerate(LAYERS) for module in layer}
# Where an import inside a function is the rule, not a way round a cycle.
LAZY_ALLOWED = {"apps"}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The app's modules `path` imports at its top, and inside functions."""
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    inner: set[str] = set()

    def names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.ImportFrom) and node.module == "catalog_bulk":
            return {alias.name for alias in node.names}
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("catalog_bulk."):
            return {(node.module or "").split(".")[1]}
        if isinstance(node, ast.Import):
            return {a.name.split(".")[1] for a in node.names if a.name.startswith("catalog_bulk.")}
        return set()

    for statement in tree.body:
        top |= names(statement)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inside in ast.walk(node):
                inner |= names(inside)
    return top, inner


def test_every_module_has_a_layer() -> None:
    modules = {p.stem for p in APP.glob("*.py") if p.stem != "__init__"}
    assert modules == set(RANK)


def test_each_module_imports_only_modules_below_it() -> None:
    upward = [
        f"{path.stem} → {target}"
        for path in APP.glob("*.py")
        if path.stem in RANK
        for target in _imports(path)[0]
        if RANK[target] >= RANK[path.stem]
    ]
    assert upward == []


def test_only_the_app_config_imports_inside_functions() -> None:
    lazy = {
        path.stem: inner
        for path in APP.glob("*.py")
        if (inner := _imports(path)[1]) and path.stem not in LAZY_ALLOWED
    }
    assert lazy == {}


def test_catalogs_code_does_not_import_the_bulk_app() -> None:
    # Bulk builds on catalogs, never the reverse. (The catalog page links to the bulk
    # screens, and catalogs 0007 follows catalog_bulk 0001: neither is an import.)
    catalogs = APP.parent / "catalogs"
    offenders = [
        str(path.relative_to(catalogs))
        for path in catalogs.rglob("*.py")
        if "migrations" not in path.parts and "catalog_bulk" in path.read_text()
    ]
    assert offenders == []
