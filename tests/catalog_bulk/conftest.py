import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkJob
from catalog_bulk.services import bulk_job_parse, bulk_job_upload
from catalogs.models import Catalog
from console.braze import close_client
from tests.factories import CatalogFactory, catalog_item_create
from tests.fixtures.sandbox import SandboxHandle

type MakeJob = Callable[..., BulkJob]


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


@pytest.fixture(autouse=True)
def _media(settings: Settings, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def catalog(db: None) -> Catalog:
    """name (string), price (number), in_stock (boolean), released_at (time); two items."""
    catalog: Catalog = CatalogFactory.create(name="shop")
    catalog_item_create(catalog, "sku-1", name="Mug", price=10, in_stock=True)
    catalog_item_create(catalog, "sku-2", name="Cup", price=5, in_stock=False)
    return catalog


@pytest.fixture
def shop(db: None, braze: SandboxHandle) -> Catalog:
    """The sandbox's ``products`` catalog (10 items), mirrored: the ``catalog`` of modules
    whose jobs reach Braze."""
    from catalogs.services import catalog_mirror_refresh
    from console.braze import get_client

    braze.admin.reset(products=10)
    catalog_mirror_refresh(client=get_client(lane="background", max_wait=5))
    return Catalog.objects.get(name="products")


@pytest.fixture
def make_job(catalog: Catalog, editor: User) -> MakeJob:
    """Upload ``content`` (bytes) and parse it at once, as the parse task would."""

    def make(content: bytes, operation: str = "upsert", name: str = "items.csv") -> BulkJob:
        upload = SimpleUploadedFile(name, content)
        job = bulk_job_upload(actor=editor, catalog=catalog, operation=operation, upload=upload)
        return bulk_job_parse(job_id=job.pk)

    return make
