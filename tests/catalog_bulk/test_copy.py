"""A catalog's items go to the catalog of the same name in another workspace as a bulk
upsert job there: checked against that catalog's fields, previewed and approved there."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from catalog_bulk.models import BulkJob
from catalog_bulk.services import BulkError, bulk_job_copy_items, bulk_job_parse
from catalogs.models import Catalog, CatalogItem
from console.role_models import WorkspaceRole
from console.roles import Role
from console.workspaces import workspace_override
from tests.factories import user_with_role

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_workspaces")]

FIELDS = [{"name": "name", "type": "string"}, {"name": "price", "type": "number"}]


@pytest.fixture
def staging() -> Catalog:
    catalog = Catalog.objects.create(workspace="staging", name="products", fields=FIELDS)
    CatalogItem.objects.bulk_create(
        CatalogItem(
            catalog=catalog,
            item_id=f"sku-{n}",
            data={"name": f"Mug {n}", "price": n},
            mirrored_at=timezone.now(),
        )
        for n in range(3)
    )
    catalog.mirror_item_count = 3
    catalog.save()
    return catalog


@pytest.fixture
def production() -> Catalog:
    catalog = Catalog.objects.create(workspace="production", name="products", fields=FIELDS)
    CatalogItem.objects.create(
        catalog=catalog,
        item_id="sku-0",
        data={"name": "Mug 0", "price": 0},
        mirrored_at=timezone.now(),
    )
    return catalog


def test_the_job_carries_every_item_and_is_checked_against_the_targets_mirror(
    staging: Catalog,
    production: Catalog,
    editor: User,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks() as queued, workspace_override("production"):
        job = bulk_job_copy_items(actor=editor, source=staging, target=production)

    assert (job.workspace, job.catalog_id, job.operation) == ("production", production.pk, "upsert")
    lines = Path(job.file_path).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": f"sku-{n}", "name": f"Mug {n}", "price": n} for n in range(3)
    ]
    assert len(queued) == 1  # its parse
    with workspace_override("production"):
        job = bulk_job_parse(job_id=job.pk)
    assert (job.n_create, job.n_update, job.n_unchanged, job.n_error) == (2, 0, 1, 0)


def test_copying_needs_another_workspace_the_same_name_and_items(
    staging: Catalog, production: Catalog, editor: User
) -> None:
    other = Catalog.objects.create(workspace="production", name="stores", fields=FIELDS)
    empty = Catalog.objects.create(workspace="staging", name="stores", fields=FIELDS)

    with pytest.raises(BulkError, match="same name in another workspace"):
        bulk_job_copy_items(actor=editor, source=staging, target=staging)
    with pytest.raises(BulkError, match="same name in another workspace"):
        bulk_job_copy_items(actor=editor, source=staging, target=other)
    with pytest.raises(BulkError, match="no items"):
        bulk_job_copy_items(actor=editor, source=empty, target=other)
    assert not BulkJob.objects.exists()


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_editor_in_production_copies_and_lands_on_the_job_there(
    staging: Catalog, production: Catalog
) -> None:
    editor = user_with_role(Role.EDITOR)
    production.present_in_braze = True
    production.save()

    response = _client(editor).post(
        "/w/staging/catalogs/products/bulk/copy/", {"workspace": "production"}
    )

    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/w/production/catalogs/products/bulk/{job.pk}/"
    assert job.workspace == "production"


def test_only_who_may_propose_in_the_target_copies_there(
    staging: Catalog, production: Catalog
) -> None:
    production.present_in_braze = True
    production.save()
    viewer_there = user_with_role(Role.EDITOR)
    WorkspaceRole.objects.create(user=viewer_there, workspace="production", role=Role.VIEWER)
    url = "/w/staging/catalogs/products/bulk/copy/"

    assert _client(viewer_there).post(url, {"workspace": "production"}).status_code == 403
    assert (
        _client(user_with_role(Role.VIEWER)).post(url, {"workspace": "production"}).status_code
        == 403
    )
    assert (
        _client(user_with_role(Role.EDITOR)).post(url, {"workspace": "staging"}).status_code == 403
    )
    assert not BulkJob.objects.exists()


def test_a_target_without_the_catalog_is_told_to_promote_its_schema_first(
    staging: Catalog,
) -> None:
    response = _client(user_with_role(Role.EDITOR)).post(
        "/w/staging/catalogs/products/bulk/copy/", {"workspace": "production"}, follow=True
    )

    assert "Production has no catalog named products yet: promote its schema first" in (
        response.content.decode()
    )
    assert not BulkJob.objects.exists()


def test_the_catalog_page_offers_the_copy_to_workspaces_one_may_propose_in(
    staging: Catalog,
) -> None:
    page = _client(user_with_role(Role.EDITOR)).get("/w/staging/catalogs/products/")
    viewer_page = _client(user_with_role(Role.VIEWER)).get("/w/staging/catalogs/products/")

    assert 'option value="production">Production (production)' in page.content.decode()
    assert "Copy these items to" not in viewer_page.content.decode()
