"""docs/operations.md's backup and restore: a pg_dump restored into a fresh database still
verifies against the checkpoints kept off-host, and a restore of an older dump is reported
(the checkpoints name entries the restored chain no longer has)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connections, transaction
from psycopg import sql

from console.audit.services import SYSTEM, audit_append, audit_checkpoint_issue

ROOT = Path(__file__).resolve().parents[3]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _url(dbname: str) -> str:
    """PG_SUPERUSER_URL (scripts/test) pointed at another database."""
    return os.environ["PG_SUPERUSER_URL"].rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture
def superuser() -> str:
    if not os.environ.get("PG_SUPERUSER_URL"):
        pytest.skip("needs scripts/test's PostgreSQL superuser")
    return os.environ["PG_SUPERUSER_URL"]


@pytest.fixture
def dump_dir() -> Iterator[Path]:
    """Outside tmp_path: the test database holds the canary guard's trigger, whose source
    lists the canary, so a dump of it does too (a test artefact, not a leak)."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as directory:
        yield Path(directory)


@pytest.fixture
def fresh_databases(superuser: str) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    with psycopg.connect(superuser, autocommit=True) as conn:
        for name in made:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _dump(path: Path) -> None:
    """What docs/operations.md says to run: a custom-format dump of the whole database."""
    name = connections["default"].settings_dict["NAME"]
    subprocess.run(
        [PG_BIN / "pg_dump", "--format=custom", f"--file={path}", f"--dbname={_url(name)}"],
        check=True,
        capture_output=True,
    )


def _restore(path: Path, superuser: str, made: list[str]) -> str:
    """Into a fresh, empty database owned by the schema owner, as docs/operations.md says."""
    name = f"restored_{uuid.uuid4().hex[:8]}"
    owner = connections["default"].settings_dict["USER"]
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )
    made.append(name)
    subprocess.run(
        [PG_BIN / "pg_restore", "--exit-on-error", f"--dbname={_url(name)}", path],
        check=True,
        capture_output=True,
    )
    return name


def _verify_audit(dbname: str) -> subprocess.CompletedProcess[str]:
    """manage.py verify_audit against the restored database, with the same keys (the test
    settings derive them from SECRET_KEY, which the subprocess inherits) and checkpoint file."""
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + dbname,
        "AUDIT_CHECKPOINT_DIR": str(settings.AUDIT_CHECKPOINT_DIR),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _append(n: int, start: int) -> None:
    with transaction.atomic():
        for i in range(start, start + n):
            audit_append(actor=SYSTEM, action="test.backup", data={"n": i})


def test_a_restored_dump_verifies_and_an_older_one_is_reported_against_newer_checkpoints(
    superuser: str, fresh_databases: list[str], dump_dir: Path
) -> None:
    _append(3, 0)
    audit_checkpoint_issue()
    older = dump_dir / "older.dump"
    _dump(older)
    _append(2, 3)
    audit_checkpoint_issue()
    newer = dump_dir / "newer.dump"
    _dump(newer)

    restored = _restore(newer, superuser, fresh_databases)
    result = _verify_audit(restored)
    assert result.returncode == 0, result.stderr
    assert "audit trail verifies: 5 entries, head seq 5, 2 checkpoints" in result.stdout

    # The older dump lacks entries 4 and 5, which the newer checkpoint (kept off-host in the
    # checkpoint file) covers: the restore is reported, naming where the chain now ends.
    stale = _restore(older, superuser, fresh_databases)
    result = _verify_audit(stale)
    assert result.returncode != 0
    assert "does NOT verify; first bad entry: seq 4" in result.stderr
    assert "the chain ends at seq 3 but a signed checkpoint of" in result.stderr
    assert "covers seq 5: entries were removed from the tail" in result.stderr
