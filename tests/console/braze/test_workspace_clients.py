"""One client per workspace: its own endpoint and key, and its own share of the limiter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client, get_limiter
from console.workspaces import workspaces_from_env
from tests.fixtures.canary import CANARIES
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def two_workspaces(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """ "default" is the suite's single workspace; "production" is another sandbox workspace
    reached with the production canary key."""
    braze_sandbox.admin.create_key(["*"], workspace="demo-prod", key=CANARIES.production_api_key)
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "workspace": uuid.uuid4().hex}
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "default,production",
            "BRAZE_DEFAULT_REST_ENDPOINT": braze_sandbox.url,
            "BRAZE_PRODUCTION_REST_ENDPOINT": braze_sandbox.url,
            "BRAZE_PRODUCTION_API_KEY": CANARIES.production_api_key,
            "BRAZE_PRODUCTION_PRODUCTION": "1",
        }
    )
    close_client()
    yield braze_sandbox
    close_client()


def test_each_workspace_is_reached_with_its_own_key(two_workspaces: SandboxHandle) -> None:
    two_workspaces.admin.add_tags(["only-in-production"], workspace="demo-prod")

    get_client().catalog_list()
    get_client(workspace="production").catalog_list()

    log = two_workspaces.admin.log()
    assert [(e["path"].split("?")[0], e["workspace"]) for e in log] == [
        ("/catalogs", "demo"),
        ("/catalogs", "demo-prod"),
    ]


def test_without_a_workspace_the_default_one_is_used_as_before(
    two_workspaces: SandboxHandle, settings: Settings
) -> None:
    assert get_client() is get_client(workspace="default")
    assert get_client() is not get_client(workspace="production")
    assert get_limiter().limits.workspace == settings.BRAZE_RATE_LIMITS["workspace"]


def test_each_workspace_has_its_own_limiter_keyed_by_its_name(
    two_workspaces: SandboxHandle, settings: Settings
) -> None:
    default, production = get_limiter(), get_limiter(workspace="production")

    assert production.limits.workspace == "production"
    assert default.limits.workspace != production.limits.workspace
    # Learned limits, blocks and logs live under keys naming the workspace.
    assert ":production:catalogs_sync:" in production.keys("catalogs_sync").learnt
    assert ":production:" not in default.keys("catalogs_sync").learnt


def test_an_unknown_workspace_is_refused(two_workspaces: SandboxHandle) -> None:
    with pytest.raises(LookupError, match="'nowhere'"):
        get_client(workspace="nowhere")
