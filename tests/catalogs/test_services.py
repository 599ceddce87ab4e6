import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from catalogs.models import Catalog, CatalogItem, CatalogSync, SyncState
from catalogs.services import (
    catalog_item_mirror_write,
    catalog_items_mirror_page,
    catalog_sync_request,
    catalog_sync_run,
    catalog_sync_step,
)
from console.audit.models import AuditEntry
from console.braze.client import BrazeClient, CatalogItemsPage
from tests.console.braze.helpers import make_limiter, make_limits
from tests.fixtures.sandbox import SandboxHandle


class Killed(BaseException):
    """Stands in for a worker killed mid-request: nothing in the sync catches it."""


class DiesOnPage:
    """The real client, except that fetching page ``n`` (1-based) kills the worker."""

    def __init__(self, client: BrazeClient, n: int) -> None:
        self.client, self.n, self.calls = client, n, 0

    def catalog_item_page(self, **kwargs: Any) -> CatalogItemsPage:
        self.calls += 1
        if self.calls == self.n:
            raise Killed
        return self.client.catalog_item_page(**kwargs)


def _full_pass(catalog: Catalog, client: BrazeClient) -> CatalogSync:
    sync = catalog_sync_request(catalog=catalog, actor=None)
    catalog_sync_step(sync_id=sync.pk, client=client)
    sync.refresh_from_db()
    return sync


def _mirror(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return dict(CatalogItem.objects.filter(catalog=catalog).values_list("item_id", "data"))


def test_a_full_pass_mirrors_every_item_with_progress_and_freshness(
    products: Catalog, sync_client: BrazeClient
) -> None:
    sync = _full_pass(products, sync_client)

    assert sync.state == SyncState.SUCCEEDED
    assert (sync.pages_done, sync.items_done, sync.items_added) == (3, 120, 120)
    assert sync.percent == 100
    mirror = _mirror(products)
    assert len(mirror) == 120
    assert mirror["sku-000007"]["category"] == "watches"
    assert "id" not in mirror["sku-000007"]
    products.refresh_from_db()
    assert products.last_full_sync_at is not None
    assert products.mirror_item_count == 120


def test_a_pass_killed_mid_way_resumes_from_its_checkpoint(
    products: Catalog,
    sync_client: BrazeClient,
    requests_since: Callable[[float, str], list[dict[str, Any]]],
) -> None:
    sync = catalog_sync_request(catalog=products, actor=None)
    since = time.time()
    with pytest.raises(Killed):
        catalog_sync_run(sync_id=sync.pk, client=DiesOnPage(sync_client, 2))  # type: ignore[arg-type]

    sync.refresh_from_db()
    assert sync.state == SyncState.RUNNING
    assert (sync.pages_done, sync.items_done) == (1, 50)
    assert sync.cursor
    assert CatalogItem.objects.filter(catalog=products).count() == 50

    catalog_sync_run(sync_id=sync.pk, client=sync_client)

    sync.refresh_from_db()
    assert sync.state == SyncState.SUCCEEDED
    assert (sync.pages_done, sync.items_done) == (3, 120)
    assert len(_mirror(products)) == 120
    pages = [e["path"] for e in requests_since(since, "/catalogs/products/items")]
    # The first page once, then the resumed run starts at the checkpoint's cursor.
    assert len(pages) == 3
    assert "cursor=" not in pages[0]
    assert all("cursor=" in p for p in pages[1:])


def test_a_second_request_joins_the_pass_already_under_way(products: Catalog) -> None:
    first = catalog_sync_request(catalog=products, actor=None)
    second = catalog_sync_request(catalog=products, actor=None)
    assert first.pk == second.pk


def test_the_first_pass_records_no_external_changes(
    products: Catalog, sync_client: BrazeClient
) -> None:
    _full_pass(products, sync_client)
    assert not AuditEntry.objects.filter(action__startswith="catalog_item.external").exists()


def test_items_changed_in_braze_directly_show_up_as_external_changes_after_sync(
    products: Catalog, sync_client: BrazeClient, small_sandbox: SandboxHandle
) -> None:
    _full_pass(products, sync_client)
    small_sandbox.admin.edit_catalog_item("products", "sku-000001", {"price": 12.5})
    small_sandbox.admin.delete_catalog_item("products", "sku-000002")
    small_sandbox.admin.put_catalog_item("products", "sku-dashboard", {"name": "From the UI"})

    sync = _full_pass(products, sync_client)

    assert (sync.items_added, sync.items_changed, sync.items_removed) == (1, 1, 1)
    mirror = _mirror(products)
    assert mirror["sku-000001"]["price"] == 12.5
    assert "sku-000002" not in mirror
    assert mirror["sku-dashboard"] == {"name": "From the UI"}
    entries = {
        e.resource_id: e
        for e in AuditEntry.objects.filter(action__startswith="catalog_item.external")
    }
    assert set(entries) == {"products/sku-000001", "products/sku-000002", "products/sku-dashboard"}
    changed = entries["products/sku-000001"]
    assert changed.action == "catalog_item.external_changed"
    assert changed.actor_name == "catalog-sync"
    assert changed.data["fields"]["price"]["after"] == 12.5
    assert entries["products/sku-000002"].action == "catalog_item.external_removed"
    assert entries["products/sku-dashboard"].action == "catalog_item.external_added"


def test_a_console_write_newer_than_the_page_is_kept_and_not_called_external(
    products: Catalog, sync_client: BrazeClient
) -> None:
    _full_pass(products, sync_client)
    fetched_at = timezone.now()
    page = sync_client.catalog_item_page(catalog_name="products")
    # The console applies a change while the page is on its way back.
    catalog_item_mirror_write(
        catalog=products, item_id="sku-000003", action="update", values={"price": 1.0}
    )

    outcome = catalog_items_mirror_page(
        catalog=products,
        items=page.items,
        sync_id=None,
        fetched_at=fetched_at,
        record_external=True,
    )

    assert outcome.changed == 0
    assert _mirror(products)["sku-000003"]["price"] == 1.0
    assert not AuditEntry.objects.filter(action__startswith="catalog_item.external").exists()


def test_a_pass_that_meets_brazes_limit_waits_with_its_checkpoint(
    products: Catalog, sync_client: BrazeClient, small_sandbox: SandboxHandle
) -> None:
    # A long window, so a window boundary between pages cannot let the second page in.
    small_sandbox.admin.set_limit("catalog_items_sync", 1, window_seconds=3600)
    sync = catalog_sync_request(catalog=products, actor=None)

    run = catalog_sync_run(sync_id=sync.pk, client=sync_client)

    sync.refresh_from_db()
    assert sync.state == SyncState.WAITING
    assert sync.pages_done == 1
    assert sync.cursor
    assert run.retry_in is not None
    assert run.retry_in > 0
    assert "limit" in sync.error_message.lower()


def test_the_schedule_resumes_a_stalled_pass_and_starts_due_ones(
    products: Catalog,
    sync_client: BrazeClient,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from catalogs import services

    queued: list[int] = []
    monkeypatch.setattr(
        services,
        "catalog_sync_enqueue",
        lambda *, sync_id, workspace, countdown=0: queued.append(sync_id),
    )
    stores = Catalog.objects.get(name="stores")
    stalled = CatalogSync.objects.create(
        catalog=products,
        state=SyncState.RUNNING,
        cursor="c2tpcDo1MA==",
        pages_done=1,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        started = services.catalog_sync_schedule(client=sync_client)

    assert stalled.pk in queued  # picked up again from its checkpoint
    assert {s.catalog.name for s in started} == {"stores", "loyalty_tiers"}
    assert all(s.trigger == "schedule" for s in started)
    assert CatalogSync.objects.filter(catalog=stores, state=SyncState.QUEUED).exists()


def test_a_pass_that_meets_an_unreadable_answer_fails_and_says_so(
    products: Catalog, sync_client: BrazeClient, small_sandbox: SandboxHandle
) -> None:
    small_sandbox.admin.set_injection(malformed_rate=1.0, groups=["catalog_items_sync"])
    sync = catalog_sync_request(catalog=products, actor=None)

    run = catalog_sync_run(sync_id=sync.pk, client=sync_client)

    sync.refresh_from_db()
    assert sync.state == SyncState.FAILED
    assert run.retry_in is None  # not queued again and again
    assert "cannot read" in sync.error_message
    assert "text/html" in sync.error_message
    products.refresh_from_db()
    assert products.present_in_braze


def test_entries_without_an_id_are_left_out_and_reported_and_the_rest_mirrored(
    db: None,
) -> None:
    pages = {
        None: (
            [{"id": "a", "city": "Oslo"}, {"city": "nowhere"}, {"id": "b", "city": "Rome"}],
            '</catalogs/stores/items?cursor=c2tpcDoz>; rel="next"',
        ),
        "c2tpcDoz": ([{"id": "c", "city": "Lima"}, {"id": None, "city": "?"}], None),
    }

    def braze(request: httpx.Request) -> httpx.Response:
        items, link = pages[request.url.params.get("cursor")]
        headers = {"Link": link} if link else {}
        return httpx.Response(200, json={"items": items, "message": "success"}, headers=headers)

    client = BrazeClient(
        http=httpx.Client(
            base_url="https://rest.iad-03.braze.com", transport=httpx.MockTransport(braze)
        ),
        limiter=make_limiter(limits=make_limits(), prefix=f"test:{uuid.uuid4().hex}"),
        api_key="k",
    )
    fields = [{"name": "id", "type": "string"}, {"name": "city", "type": "string"}]
    stores = Catalog.objects.create(name="stores", fields=fields)
    sync = catalog_sync_request(catalog=stores, actor=None)

    catalog_sync_run(sync_id=sync.pk, client=client)

    sync.refresh_from_db()
    assert sync.state == SyncState.SUCCEEDED
    assert set(_mirror(stores)) == {"a", "b", "c"}
    assert (sync.items_done, sync.items_skipped) == (3, 2)
    assert "2 entries without an item ID" in sync.error_message
    synced = AuditEntry.objects.get(action="catalog.synced")
    assert synced.data["skipped"] == 2


@pytest.mark.django_db
def test_items_a_job_had_braze_write_are_stored_whole_with_their_search_text() -> None:
    from catalogs.services import catalog_items_mirror_store
    from tests.factories import CatalogFactory, catalog_item_create

    catalog = CatalogFactory.create(name="shop")
    old = catalog_item_create(catalog, "sku-1", name="Mug", price=10, in_stock=True)
    catalog_item_create(catalog, "sku-2", name="Cup", price=5)
    catalog_item_create(catalog, "sku-3", name="Bowl", price=7)
    catalog_items_mirror_store(
        catalog=catalog,
        items={"sku-1": {"name": "Big MUG", "price": 12}, "NEW-4": {"name": "Plate", "price": 3}},
        deleted=["sku-3"],
    )
    items = {i.item_id: i for i in CatalogItem.objects.filter(catalog=catalog)}
    assert set(items) == {"sku-1", "sku-2", "NEW-4"}
    # A stored item is replaced whole (no in_stock left over), not merged.
    assert items["sku-1"].data == {"name": "Big MUG", "price": 12}
    assert items["sku-1"].pk == old.pk
    assert items["sku-1"].mirrored_at > old.mirrored_at
    # Its id and string values, lower-cased, for search; numbers are not text.
    assert items["sku-1"].search_text == "sku-1 big mug"
    assert items["NEW-4"].search_text == "new-4 plate"
    assert items["NEW-4"].data == {"name": "Plate", "price": 3}
    assert items["sku-2"].data == {"name": "Cup", "price": 5}


@pytest.mark.django_db
def test_items_stored_from_a_bulk_job_keep_every_character_and_value_as_given() -> None:
    from catalogs.services import catalog_items_mirror_store
    from tests.factories import CatalogFactory

    catalog = CatalogFactory.create(name="shop")
    awkward: dict[str, dict[str, Any]] = {
        'quote"and\\back': {"name": 'Crème "Brûlée"\\ {x}', "price": 1.5, "n": None},
        "emoji-🎉": {"name": "Ünïcode ✓\ttab\nline", "list": [1, "a", {"b": True}]},
        "plain": {"name": "", "big": 12345678901234567890, "tiny": 1e-07},
    }
    catalog_items_mirror_store(catalog=catalog, items=awkward)
    stored = {i.item_id: i for i in CatalogItem.objects.filter(catalog=catalog)}
    assert set(stored) == set(awkward)
    for item_id, data in awkward.items():
        assert stored[item_id].data == data
    assert stored['quote"and\\back'].search_text == 'quote"and\\back crème "brûlée"\\ {x}'
    assert stored["emoji-🎉"].search_text == "emoji-🎉 ünïcode ✓\ttab\nline"
