"""Extra credentials given at start-up (--api-key, --scim-token): how the suite's canary gets in."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from braze_sandbox.__main__ import build_parser
from braze_sandbox.app import DEV_SCIM_ORIGIN, Sandbox
from braze_sandbox.config import SandboxConfig
from tests.braze_sandbox.conftest import sandbox_client

KEYS = ["brz-test-extra-key-one", "brz-test-extra-key-two"]
TOKEN = "brz-test-extra-scim-token"


def _log(client: TestClient) -> list[dict[str, object]]:
    return [json.loads(line) for line in client.get("/_sandbox/log").text.splitlines()]


def test_the_flags_are_repeatable_and_reach_the_sandbox() -> None:
    args = build_parser().parse_args(
        ["serve", "--data", "x", "--api-key", KEYS[0], "--api-key", KEYS[1], "--scim-token", TOKEN]
    )
    assert args.api_key == KEYS
    assert args.scim_token == [TOKEN]
    assert build_parser().parse_args(["serve", "--data", "x"]).api_key == []


def test_extra_credentials_have_every_permission_and_survive_a_reset(tmp_path: Path) -> None:
    sandbox = Sandbox(
        tmp_path,
        SandboxConfig(seed_products=60),
        seed_demo=True,
        api_keys=KEYS,
        scim_tokens=[TOKEN],
    )
    with sandbox_client(sandbox) as client:
        for _ in range(2):  # the second reset restores the seeded snapshot instead
            client.post("/_sandbox/reset", json={"products": 60})
            for key in KEYS:
                rest = {"Authorization": f"Bearer {key}"}
                assert client.get("/catalogs", headers=rest).status_code == 200
                assert client.get("/content_blocks/list", headers=rest).status_code == 200
            # A --scim-token has the development Service Origin.
            scim = {"Authorization": f"Bearer {TOKEN}", "X-Request-Origin": DEV_SCIM_ORIGIN}
            found = client.get(
                "/scim/v2/Users", params={"filter": 'userName eq "x@y.z"'}, headers=scim
            )
            assert found.status_code == 200
        assert {e["key"] for e in _log(client)} == {"cli-key-1", "cli-key-2", "cli-scim-1"}
        assert client.get("/catalogs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_without_the_flags_only_the_dev_credentials_exist(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, SandboxConfig(seed_products=60))
    with sandbox_client(sandbox) as client:
        rest = {"Authorization": f"Bearer {KEYS[0]}"}
        assert client.get("/catalogs", headers=rest).status_code == 401
