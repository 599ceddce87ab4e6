"""ruff (lint and format) and mypy run in the suite: CI refuses unformatted or ill-typed code."""

import os
import subprocess
import sys
from pathlib import Path

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


def test_every_phony_name_in_the_makefile_is_a_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    targets = {line.split(":", 1)[0] for line in makefile.splitlines() if line[:1].isalpha()}
    assert set(phony.removeprefix(".PHONY:").split()) <= targets
    assert {"test", "test-fast", "lint"} <= targets
