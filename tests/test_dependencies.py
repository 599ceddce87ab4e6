"""The sandbox's stack stays out of production: its own dependency group, its own lock line-up."""

import ast
import re
import tomllib
from pathlib import Path

from tests.test_import_graph import project_packages

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_ONLY = {"starlette", "uvicorn"}


def _locked(name: str) -> dict[str, str]:
    """Package name -> its pinned line with every hash, from a hashed lock file."""
    text = (ROOT / name).read_text(encoding="utf-8")
    blocks = re.findall(
        r"^([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?==\S+)((?:\s+\\\n\s+--hash=\S+)+)", text, re.M
    )
    return {pin.split("==")[0].lower(): pin + " ".join(hashes.split()) for pin, hashes in blocks}


def test_the_sandbox_stack_is_a_dependency_group_of_its_own() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {re.split(r"[=<>\[ ]", d)[0] for d in project["project"]["dependencies"]}
    sandbox = {re.split(r"[=<>\[ ]", d)[0] for d in project["dependency-groups"]["sandbox"]}
    assert sandbox == SANDBOX_ONLY
    assert not runtime & SANDBOX_ONLY


def test_production_installs_the_same_versions_without_the_sandbox_or_dev_tools() -> None:
    everything, production = _locked("requirements.lock"), _locked("requirements-production.lock")
    assert everything.keys() >= SANDBOX_ONLY
    assert not SANDBOX_ONLY & production.keys()
    assert not {"pytest", "mypy", "ruff", "playwright"} & production.keys()
    # Same pins and hashes: what was tested is what is deployed.
    assert {name: everything.get(name) for name in production} == production


def test_only_the_sandbox_imports_its_stack() -> None:
    offenders = []
    for package in set(project_packages()) - {"braze_sandbox"}:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                if any(n.split(".")[0] in SANDBOX_ONLY for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
