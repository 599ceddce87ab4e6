import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from catalogs.models import Catalog
from catalogs.services import catalog_mirror_refresh
from console.braze import close_client, get_client
from console.braze.client import BrazeClient
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The console's Braze client pointed at the sandbox, with a private limiter bucket."""
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"test-{uuid.uuid4().hex}",
        "margin_seconds": 0.05,
    }
    close_client()  # the client is built once per process from the settings
    yield braze_sandbox
    close_client()


@pytest.fixture
def small_sandbox(braze: SandboxHandle) -> SandboxHandle:
    """120 products: three pages of 50, so a full pass costs three requests."""
    braze.admin.reset(products=120)
    return braze


@pytest.fixture
def sync_client(braze: SandboxHandle) -> BrazeClient:
    return get_client(lane="background", max_wait=5.0)


@pytest.fixture
def products(db: None, small_sandbox: SandboxHandle, sync_client: BrazeClient) -> Catalog:
    catalog_mirror_refresh(client=sync_client)
    return Catalog.objects.get(name="products")


@pytest.fixture
def requests_since(braze: SandboxHandle) -> Callable[[float, str], list[dict[str, Any]]]:
    def own(since: float, path_part: str = "/catalogs") -> list[dict[str, Any]]:
        return [
            e
            for e in braze.admin.log(since=since)
            if path_part in e["path"] and not e.get("external")
        ]

    return own
