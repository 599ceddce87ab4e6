"""Each process gets only the credentials it needs (docs/security.md, "Credentials").

The schema owner's login reaches only migrations and the sort-index builds; the checkpoint
key only the signer. The web server and the Celery worker and beat get neither.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.processes import process_environment

ROOT = Path(__file__).resolve().parents[2]
OWNER_URL = "postgres://console@db.example/console"
CHECKPOINT_KEY = "checkpoint-key-" + "9" * 40
FULL = {
    "PATH": os.environ.get("PATH", ""),
    "DATABASE_URL": "postgres://console_app@db.example/console",
    "DATABASE_OWNER_URL": OWNER_URL,
    "AUDIT_CHECKPOINT_KEY": CHECKPOINT_KEY,
    "AUDIT_CHAIN_KEY": "chain-key-" + "8" * 40,
}


@pytest.mark.parametrize("kind", ["web", "worker", "beat"])
def test_the_web_and_the_workers_get_neither_the_owner_nor_the_checkpoint_key(kind: str) -> None:
    env = process_environment(kind, FULL)
    assert "DATABASE_OWNER_URL" not in env
    assert "AUDIT_CHECKPOINT_KEY" not in env
    # What they do need stays: the run-time login, and the chain key to append entries.
    assert env["DATABASE_URL"] == FULL["DATABASE_URL"]
    assert env["AUDIT_CHAIN_KEY"] == FULL["AUDIT_CHAIN_KEY"]


def test_the_signer_gets_the_key_and_the_indexer_the_owner_and_neither_more() -> None:
    signer, indexer = process_environment("signer", FULL), process_environment("indexer", FULL)
    assert signer["AUDIT_CHECKPOINT_KEY"] == CHECKPOINT_KEY
    assert indexer["DATABASE_OWNER_URL"] == OWNER_URL
    assert "DATABASE_OWNER_URL" not in signer
    assert "AUDIT_CHECKPOINT_KEY" not in indexer
    # Neither appends to the trail, so neither can make an entry that verifies.
    assert "AUDIT_CHAIN_KEY" not in signer
    assert "AUDIT_CHAIN_KEY" not in indexer


@pytest.mark.parametrize("kind", ["beat", "signer", "indexer", "migrate", "sandbox"])
def test_only_what_calls_braze_gets_the_braze_key_and_scim_token(kind: str) -> None:
    secrets = {"BRAZE_API_KEY": "brz-key", "BRAZE_SCIM_TOKEN": "brz-scim"}
    assert not secrets.keys() & process_environment(kind, FULL | secrets).keys()
    for calls_braze in ("web", "worker", "command"):
        assert process_environment(calls_braze, FULL | secrets).items() >= secrets.items()


@pytest.mark.parametrize("kind", ["beat", "signer", "indexer", "migrate", "sandbox"])
def test_every_workspace_s_key_token_and_secrets_file_go_only_where_the_braze_key_goes(
    kind: str,
) -> None:
    secrets = {
        "BRAZE_PRODUCTION_API_KEY": "brz-prod-key",
        "BRAZE_EU_WEST_SCIM_TOKEN": "brz-eu-scim",
        "BRAZE_WORKSPACES_FILE": "/etc/braze-console/workspaces.toml",
    }
    plain = {"BRAZE_WORKSPACES": "staging,production", "BRAZE_PRODUCTION_REST_ENDPOINT": "US-03"}
    started = process_environment(kind, FULL | secrets | plain)
    assert not secrets.keys() & started.keys()
    assert started.items() >= plain.items()
    for calls_braze in ("web", "worker", "command"):
        assert process_environment(calls_braze, FULL | secrets).items() >= secrets.items()


def test_an_unknown_kind_of_process_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind of process"):
        process_environment("wrker", FULL)


def _procfile(name: str = "Procfile") -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and line[0] != "#")


def test_every_process_scripts_run_starts_goes_through_the_launcher_as_its_own_kind() -> None:
    procs = _procfile()
    assert {"web", "worker", "beat", "signer", "indexer"} <= procs.keys()
    for name, command in procs.items():
        assert command.startswith(f".venv/bin/python -m console.processes {name} "), name
    assert "audit_checkpoint_signer" in procs["signer"]
    assert "catalog_sort_indexes" in procs["indexer"]
    # scripts/run itself runs its one-off commands the same way.
    run = (ROOT / "scripts" / "run").read_text()
    manage = [line for line in run.splitlines() if "manage.py" in line]
    assert manage
    for line in manage:
        assert re.search(
            r"manage\.py (migrate|seed_demo_users|seed_preview_profiles|enqueue_syncs)", line
        ), line
    assert re.search(r"-m console\.processes migrate\s*\\\n\s+\S+ manage\.py migrate", run)


def _run_as(kind: str, code: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "TESTING", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    } | FULL
    env |= {"DEBUG": "0", "SECRET_KEY": "s" * 20 + os.urandom(16).hex(), "HTTPS": "0"} | extra
    return subprocess.run(
        [sys.executable, "-m", "console.processes", kind, sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


SETTINGS = (
    "import django, os; django.setup(); from django.conf import settings as s; "
    "print(sorted(s.DATABASES), bool(s.AUDIT_CHECKPOINT_KEY), bool(s.AUDIT_CHAIN_KEY), "
    "'DATABASE_OWNER_URL' in os.environ, 'AUDIT_CHECKPOINT_KEY' in os.environ)"
)


@pytest.mark.parametrize("kind", ["web", "worker"])
def test_a_production_web_or_worker_starts_and_loads_neither_credential(kind: str) -> None:
    result = _run_as(kind, SETTINGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['default'] False True False False"


def test_the_production_signer_holds_the_key_only() -> None:
    result = _run_as("signer", SETTINGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['default'] True False False True"


def test_the_production_indexer_has_the_owner_alias_only() -> None:
    result = _run_as("indexer", SETTINGS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['default', 'owner'] False False True False"


def test_production_refuses_to_start_without_a_chain_key() -> None:
    result = _run_as("web", SETTINGS, AUDIT_CHAIN_KEY="")
    assert result.returncode != 0
    assert "AUDIT_CHAIN_KEY must be set" in result.stderr


def test_the_signer_refuses_to_start_without_the_key() -> None:
    result = _run_as(
        "worker",
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('audit_checkpoint_signer', '--once')",
    )
    assert result.returncode != 0
    assert "AUDIT_CHECKPOINT_KEY must be set for the checkpoint signer" in result.stderr
