from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from catalogs.models import Catalog, CatalogItem
from catalogs.services import (
    catalog_item_propose,
    catalog_propose_create,
    catalog_propose_delete,
    catalog_sync_request,
    catalog_sync_step,
)
from console.braze import close_client, get_client
from console.braze.client import BrazeClient
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_apply, change_request_approve
from console.roles import Role
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle


def _approve_and_apply(cr: ChangeRequest, *reviewers: User) -> ChangeRequest:
    for reviewer in reviewers:
        change_request_approve(actor=reviewer, change_request=cr)
    return change_request_apply(change_request_id=cr.pk, actor_id=reviewers[-1].pk)


def _mirrored(products: Catalog, sync_client: BrazeClient) -> Catalog:
    sync = catalog_sync_request(catalog=products, actor=None)
    catalog_sync_step(sync_id=sync.pk, client=sync_client)
    products.refresh_from_db()
    return products


def test_an_applied_edit_reaches_braze_and_the_mirror_at_once(
    products: Catalog, sync_client: BrazeClient, editor: User, reviewer: User
) -> None:
    products = _mirrored(products, sync_client)
    cr = catalog_item_propose(
        actor=editor,
        catalog=products,
        action="update",
        item_id="sku-000004",
        values={"price": 42.0, "name": "Renamed"},
    )

    cr = _approve_and_apply(cr, reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    braze_item = sync_client.catalog_item_get(catalog_name="products", item_id="sku-000004")
    assert (braze_item["price"], braze_item["name"]) == (42.0, "Renamed")
    row = CatalogItem.objects.get(catalog=products, item_id="sku-000004")
    assert (row.data["price"], row.data["name"]) == (42.0, "Renamed")
    assert "renamed" in row.search_text
    # The next pass finds nothing external: the mirror already had the console's write.
    sync = catalog_sync_request(catalog=products, actor=None)
    catalog_sync_step(sync_id=sync.pk, client=sync_client)
    sync.refresh_from_db()
    assert (sync.items_added, sync.items_changed, sync.items_removed) == (0, 0, 0)


def test_an_applied_create_and_delete_update_the_mirror(
    products: Catalog, sync_client: BrazeClient, editor: User, reviewer: User
) -> None:
    products = _mirrored(products, sync_client)
    created = catalog_item_propose(
        actor=editor,
        catalog=products,
        action="create",
        item_id="sku-new",
        values={"name": "New thing", "price": 3, "in_stock": True},
    )
    assert _approve_and_apply(created, reviewer).state == ChangeState.APPLIED
    assert CatalogItem.objects.get(catalog=products, item_id="sku-new").data["price"] == 3

    deleted = catalog_item_propose(
        actor=editor, catalog=products, action="delete", item_id="sku-000005", values={}
    )
    assert _approve_and_apply(deleted, reviewer).state == ChangeState.APPLIED
    assert not CatalogItem.objects.filter(catalog=products, item_id="sku-000005").exists()
    products.refresh_from_db()
    assert products.mirror_item_count == 120


def test_an_item_changed_in_braze_since_the_proposal_is_a_conflict(
    products: Catalog,
    sync_client: BrazeClient,
    editor: User,
    reviewer: User,
    small_sandbox: SandboxHandle,
) -> None:
    products = _mirrored(products, sync_client)
    cr = catalog_item_propose(
        actor=editor,
        catalog=products,
        action="update",
        item_id="sku-000006",
        values={"price": 1.0},
    )
    small_sandbox.admin.edit_catalog_item("products", "sku-000006", {"price": 999})

    assert _approve_and_apply(cr, reviewer).state == ChangeState.CONFLICT
    assert (
        sync_client.catalog_item_get(catalog_name="products", item_id="sku-000006")["price"] == 999
    )


def test_catalogs_are_created_and_deleted_through_change_requests(
    products: Catalog,
    sync_client: BrazeClient,
    editor: User,
    reviewer: User,
    small_sandbox: SandboxHandle,
    settings: Any,
) -> None:
    # Newer Braze figure (50/min) for the catalog group: this test lists catalogs 5+ times.
    small_sandbox.admin.set_limit("catalogs_sync", 50)
    groups = {**settings.BRAZE_RATE_LIMITS["groups"], "catalogs_sync": (50, 60.0)}
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "groups": groups}
    close_client()
    cr = catalog_propose_create(
        actor=editor,
        name="gifts",
        description="Gift ideas",
        fields=[("id", "string"), ("price", "number")],
    )
    assert _approve_and_apply(cr, reviewer).state == ChangeState.APPLIED
    gifts = Catalog.objects.get(name="gifts")
    assert gifts.fields == [{"name": "id", "type": "string"}, {"name": "price", "type": "number"}]

    delete = catalog_propose_delete(actor=editor, catalog=gifts)
    change_request_approve(actor=reviewer, change_request=delete)
    delete.refresh_from_db()
    assert delete.state == ChangeState.PENDING  # deleting a catalog needs two approvals
    second = user_with_role(Role.REVIEWER)
    assert _approve_and_apply(delete, second).state == ChangeState.APPLIED
    assert not Catalog.objects.filter(name="gifts").exists()
    assert "gifts" not in [c.name for c in get_client().catalog_list()]


@pytest.mark.parametrize(
    ("state", "error_id", "words"),
    [
        (
            "reached",
            "company-size-limit-already-reached",
            "Your company's catalog storage in Braze is full",
        ),
        (
            "surge",
            "company-size-limit-surge",
            "This change needs more catalog storage than your company has left in Braze",
        ),
    ],
)
def test_a_change_refused_for_full_storage_says_so_in_words(
    products: Catalog,
    sync_client: BrazeClient,
    editor: User,
    reviewer: User,
    small_sandbox: SandboxHandle,
    state: str,
    error_id: str,
    words: str,
) -> None:
    products = _mirrored(products, sync_client)
    created = catalog_item_propose(
        actor=editor,
        catalog=products,
        action="create",
        item_id="sku-new",
        values={"name": "New thing", "price": 3, "in_stock": True},
    )
    small_sandbox.admin.set_storage_limit(state)

    cr = _approve_and_apply(created, reviewer)

    assert cr.state == ChangeState.FAILED
    assert cr.error_id == error_id
    assert cr.error_message.startswith(words)
    assert "ask your Braze account manager for more storage" in cr.error_message
    assert "invalid" not in cr.error_message
    assert cr.error_message.endswith(f"Braze error: {error_id}.")
    page = Client()
    page.force_login(editor)
    html = page.get(reverse("changes:detail", args=[cr.pk])).content.decode()
    assert escape(cr.error_message) in html
    assert not CatalogItem.objects.filter(catalog=products, item_id="sku-new").exists()
