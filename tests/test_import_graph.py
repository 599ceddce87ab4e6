"""The project's own modules import one another one way, and never another app's private names.

The graph is read from the source (an AST walk, so imports inside functions count as edges):
a cycle closed by a lazy import is still a cycle. Imports under `if TYPE_CHECKING:` never run
and are left out: a type named both ways is not a dependency at run time.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Directories at the root that are not the project's importable code.
NOT_PACKAGES = {"tests", "scripts", "docs", "static", ".venv", ".run", ".tools", ".git"}


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # dotted module name
    path: Path
    line: int
    target: str  # the first-party module imported
    names: tuple[str, ...]  # names taken from it (empty for `import x.y`)
    lazy: bool  # inside a function or method body


def project_packages() -> list[str]:
    return sorted(
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and p.name not in NOT_PACKAGES and (p / "__init__.py").exists()
    )


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in project_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _app(module: str) -> str:
    return module.split(".", 1)[0]


def _resolve(importer: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if path.name != "__init__.py":
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST, lazy: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(tree):
        if _type_checking_only(child):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inner)


def _owner(dotted: str) -> str | None:
    """The longest first-party module that `dotted` names or lies in."""
    known = modules()
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


@cache
def imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, lazy in _walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (target := _owner(alias.name)) is not None:
                        found.append(Import(module, path, node.lineno, target, (), lazy))
                continue
            source = _resolve(module, path, node)
            if _owner(source) is None:
                continue
            for alias in node.names:
                # `from package import module` imports the module, not the package.
                target = _owner(f"{source}.{alias.name}") or source
                name = () if target != source else (alias.name,)
                found.append(Import(module, path, node.lineno, target, name, lazy))
    return tuple(found)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules()}
    for edge in imports():
        if edge.target != edge.importer:
            graph[edge.importer].add(edge.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Every strongly connected component of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _where(edge: Import) -> str:
    return f"{edge.path.relative_to(ROOT)}:{edge.line}"


def test_the_graph_sees_imports_made_inside_functions() -> None:
    # A known lazy import: settings.py loads console.logs before the user model exists.
    lazy = {(e.importer, e.target) for e in imports() if e.lazy}
    assert ("console.logs", "console.roles") in lazy
    assert "console.roles" in import_graph()["console.logs"]


def test_cycles_finds_a_cycle_closed_by_any_edge() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [("a", "b", "c")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_project_modules() -> None:
    found = cycles(import_graph())
    edges = {
        cycle: sorted(
            f"{_where(e)} {e.importer} -> {e.target}{' (lazy)' if e.lazy else ''}"
            for e in imports()
            if e.importer in cycle and e.target in cycle and e.importer != e.target
        )
        for cycle in found
    }
    assert not found, "import cycles:\n" + "\n".join(
        "\n  ".join([" <-> ".join(cycle), *lines]) for cycle, lines in edges.items()
    )


def _private_imports(edges: tuple[Import, ...]) -> list[str]:
    found = [
        f"{_where(e)} {e.importer} imports {e.target}.{name}"
        for e in edges
        if _app(e.importer) != _app(e.target)
        for name in e.names
        if name.startswith("_") and not name.startswith("__")
    ]
    found += [
        f"{_where(e)} {e.importer} imports the private module {e.target}"
        for e in edges
        if _app(e.importer) != _app(e.target)
        and any(p.startswith("_") and not p.startswith("__") for p in e.target.split("."))
    ]
    return found


def test_the_private_name_rule_tells_apps_apart() -> None:
    path = ROOT / "catalogs" / "services.py"
    across = Import("catalog_bulk.pipeline", path, 1, "catalogs.services", ("_search_text",), True)
    within = Import("catalogs.views", path, 1, "catalogs.services", ("_search_text",), False)
    public = Import("catalog_bulk.pipeline", path, 1, "catalogs.services", ("search_text",), False)
    assert len(_private_imports((across, within, public))) == 1


def test_no_module_imports_another_apps_private_names() -> None:
    private = _private_imports(imports())
    assert not private, "\n".join(private)


@cache
def _import_groups(path: Path) -> dict[int, int]:
    """Each import statement's line -> the first line of its run of consecutive imports."""
    heads: dict[int, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        for body in (getattr(node, name, None) for name in ("body", "orelse", "finalbody")):
            head = None
            for stmt in body if isinstance(body, list) else []:
                if isinstance(stmt, ast.Import | ast.ImportFrom):
                    head = head or stmt.lineno
                    heads[stmt.lineno] = head
                else:
                    head = None
    return heads


def _says_why(path: Path, line: int) -> bool:
    """A comment on the import's line, or on the line above its run of imports."""
    lines = path.read_text(encoding="utf-8").splitlines()
    head = _import_groups(path).get(line, line)
    above = lines[head - 2].strip() if head > 1 else ""
    return "#" in lines[line - 1] or above.startswith("#")


def test_every_lazy_first_party_import_says_why() -> None:
    silent = sorted(
        {
            f"{_where(e)} {e.importer} -> {e.target}"
            for e in imports()
            if e.lazy and not _says_why(e.path, e.line)
        }
    )
    assert not silent, "lazy imports with no one-line reason:\n" + "\n".join(silent)


# The core (console/) reaches an app only through what the app registers from its ready()
# (resource types, metrics sources, sign-in steps, demo-account extras) or by name (URLs,
# task names). An import that must stay is listed here with why it is not a registry.
CORE = "console"
CORE_IMPORTS_OF_APPS: dict[tuple[str, str], str] = {}


def _core_imports_of_apps(edges: tuple[Import, ...]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for e in edges:
        if _app(e.importer) == CORE and _app(e.target) != CORE:
            found.setdefault((e.importer, e.target), set()).add(_where(e))
    return found


def test_the_core_rule_tells_the_core_from_the_apps() -> None:
    path = ROOT / "console" / "metrics" / "collect.py"
    reversed_ = Import("console.metrics.collect", path, 1, "catalog_bulk.models", (), False)
    lazy = Import("console.views", path, 1, "mfa.flow", ("signin_second_step",), True)
    onward = Import("catalog_bulk.apps", path, 1, "console.metrics.sources", (), False)
    found = _core_imports_of_apps((reversed_, lazy, onward))
    assert set(found) == {
        ("console.metrics.collect", "catalog_bulk.models"),
        ("console.views", "mfa.flow"),
    }


def test_the_core_imports_no_app_but_through_registries() -> None:
    found = _core_imports_of_apps(imports())
    unexplained = sorted(
        f"{where} {importer} -> {target}"
        for (importer, target), wheres in found.items()
        if (importer, target) not in CORE_IMPORTS_OF_APPS
        for where in sorted(wheres)
    )
    assert not unexplained, (
        "console/ imports an app; register from the app's ready() instead, or add the edge "
        "to CORE_IMPORTS_OF_APPS with the reason:\n" + "\n".join(unexplained)
    )
    stale = sorted(set(CORE_IMPORTS_OF_APPS) - set(found))
    assert not stale, f"no longer imported, remove from CORE_IMPORTS_OF_APPS: {stale}"
