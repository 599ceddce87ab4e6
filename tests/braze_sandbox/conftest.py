"""In-process sandbox for fast contract tests; the real-process fixtures come from the plugin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import DEV_API_KEY, DEV_SCIM_ORIGIN, DEV_SCIM_TOKEN, Sandbox
from braze_sandbox.asgi import create_app
from braze_sandbox.config import SandboxConfig
from tests.fixtures.sandbox import braze_sandbox, sandbox_process

__all__ = ["braze_sandbox", "sandbox_process"]

REST = {"Authorization": f"Bearer {DEV_API_KEY}"}
SCIM = {"Authorization": f"Bearer {DEV_SCIM_TOKEN}", "X-Request-Origin": DEV_SCIM_ORIGIN}


@pytest.fixture
def sandbox(tmp_path: Path, braze_profile: str) -> Sandbox:
    config = SandboxConfig(async_delay_seconds=0.05, seed_products=120)
    config.set_profile(braze_profile)
    return Sandbox(tmp_path, config, seed_demo=True)


def admin_headers(sandbox: Sandbox) -> dict[str, str]:
    return {"X-Sandbox-Admin-Token": sandbox.admin_token}


def sandbox_client(sandbox: Sandbox, headers: dict[str, str] | None = None) -> TestClient:
    """A client for the in-process sandbox that may use its admin API (loopback, token)."""
    return TestClient(
        create_app(sandbox),
        base_url="http://127.0.0.1",
        headers={**admin_headers(sandbox), **(headers or {})},
    )


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[TestClient]:
    with sandbox_client(sandbox, REST) as test_client:
        yield test_client


@pytest.fixture
def unlimited(sandbox: Sandbox) -> Sandbox:
    sandbox.config.rate_limits_enabled = False
    return sandbox
