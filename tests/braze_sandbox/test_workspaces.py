"""Several workspaces at once (--workspace NAME): each its own key, data and rate limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from braze_sandbox.__main__ import build_parser
from braze_sandbox.app import DEV_API_KEY, Sandbox
from braze_sandbox.config import GroupLimit, SandboxConfig
from tests.braze_sandbox.conftest import sandbox_client

DEMO = {"Authorization": f"Bearer {DEV_API_KEY}"}
PRODUCTION = {"Authorization": "Bearer sandbox-dev-key-production"}


def _names(client: TestClient, path: str, key: str, headers: dict[str, str]) -> set[str]:
    body: dict[str, Any] = client.get(path, headers=headers).json()
    return {entry["name"] if "name" in entry else entry["template_name"] for entry in body[key]}


def _two(tmp_path: Path) -> Sandbox:
    return Sandbox(
        tmp_path, SandboxConfig(seed_products=60), seed_demo=True, workspaces=["production"]
    )


def test_the_flag_is_repeatable() -> None:
    args = build_parser().parse_args(
        ["serve", "--data", "x", "--workspace", "production", "--workspace", "eu"]
    )
    assert args.workspace == ["production", "eu"]


def test_each_workspace_has_its_own_demo_data(tmp_path: Path) -> None:
    with sandbox_client(_two(tmp_path)) as client:
        demo_blocks = _names(client, "/content_blocks/list", "content_blocks", DEMO)
        prod_blocks = _names(client, "/content_blocks/list", "content_blocks", PRODUCTION)
        demo_templates = _names(client, "/templates/email/list", "templates", DEMO)
        prod_templates = _names(client, "/templates/email/list", "templates", PRODUCTION)

        # What the promotional templates include exists in demo only; the rest in both.
        assert demo_blocks - prod_blocks == {"product_spotlight", "seasonal_banner"}
        assert prod_blocks < demo_blocks
        assert "Spring Sale" in demo_templates
        assert "Spring Sale" not in prod_templates
        assert {"Welcome", "Order Confirmation"} <= prod_templates
        demo_items = client.get("/catalogs/products/items", headers=DEMO).json()["items"]
        prod_items = client.get("/catalogs/products/items", headers=PRODUCTION).json()["items"]
        assert demo_items != prod_items


def test_a_workspace_s_writes_stay_in_that_workspace(tmp_path: Path) -> None:
    with sandbox_client(_two(tmp_path)) as client:
        created = client.post(
            "/content_blocks/create",
            headers=PRODUCTION,
            json={"name": "only_in_production", "content": "<p>x</p>"},
        )
        assert created.status_code == 201, created.text

        assert "only_in_production" in _names(
            client, "/content_blocks/list", "content_blocks", PRODUCTION
        )
        assert "only_in_production" not in _names(
            client, "/content_blocks/list", "content_blocks", DEMO
        )


def test_each_workspace_has_its_own_rate_limits(tmp_path: Path) -> None:
    sandbox = _two(tmp_path)
    sandbox.config.limits["catalogs_sync"] = GroupLimit(2, 60.0)
    with sandbox_client(sandbox) as client:
        assert [client.get("/catalogs", headers=DEMO).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        # Production's quota is untouched by demo's requests.
        assert client.get("/catalogs", headers=PRODUCTION).status_code == 200


def test_further_workspaces_are_seeded_again_after_a_reset(tmp_path: Path) -> None:
    with sandbox_client(_two(tmp_path)) as client:
        for _ in range(2):  # the second reset restores the seeded snapshot instead
            client.post("/_sandbox/reset", json={"products": 60})
            assert "email_footer" in _names(
                client, "/content_blocks/list", "content_blocks", PRODUCTION
            )


def test_without_the_flag_the_further_key_does_not_exist(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, SandboxConfig(seed_products=60), seed_demo=True)
    with sandbox_client(sandbox) as client:
        assert client.get("/catalogs", headers=PRODUCTION).status_code == 401
