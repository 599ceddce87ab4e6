"""ruff (lint and format) and mypy run in the suite: CI refuses unformatted or ill-typed code."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.test_import_graph import project_packages

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"
MYPY = Path(sys.executable).parent / "mypy"


def test_ruff_finds_no_lint_errors() -> None:
    result = subprocess.run(
        [RUFF, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_ruff_format_leaves_every_file_unchanged() -> None:
    result = subprocess.run(
        [RUFF, "format", "--check", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_mypy_finds_no_type_errors() -> None:
    # mypy's Django plugin imports the settings: the suite's environment provides them.
    result = subprocess.run(
        [MYPY, "."],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def _overrides() -> tuple[list[str], list[str]]:
    """The module patterns of the strict override and of the relaxed one (pyproject.toml)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    overrides = config["tool"]["mypy"]["overrides"]
    strict = next(o for o in overrides if o.get("disallow_untyped_defs") is True)
    relaxed = [o for o in overrides if o.get("disallow_untyped_defs") is False]
    return strict["module"], [m for o in relaxed for m in o["module"]]


def test_every_project_package_is_checked_with_the_strict_flags() -> None:
    strict, relaxed = _overrides()
    assert sorted(set(project_packages()) - {p.removesuffix(".*") for p in strict}) == []
    # Only the limiter and its client are still relaxed, while they are reshaped.
    assert set(relaxed) <= {"console.braze.limiter.*", "console.braze.client"}


def test_every_phony_name_in_the_makefile_is_a_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    targets = {line.split(":", 1)[0] for line in makefile.splitlines() if line[:1].isalpha()}
    assert set(phony.removeprefix(".PHONY:").split()) <= targets
    assert {"test", "test-fast", "lint"} <= targets
