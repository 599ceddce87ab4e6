"""A catalog's pass is scheduled no more often than it can finish, and its page says how fresh
the mirror is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from catalogs import freshness, services
from catalogs.freshness import ReadBudget, catalog_freshness, duration_words, sync_interval
from catalogs.models import Catalog, CatalogSync, SyncState
from console.braze.client import BrazeClient

# Background work's share of Braze's default 50 requests a minute (0.7 of it).
DEFAULT_BUDGET = ReadBudget(35, 60.0)


def test_a_million_items_take_hours_at_the_default_read_limit() -> None:
    seconds = freshness.pass_seconds_expected(items=1_000_000, budget=DEFAULT_BUDGET)

    assert seconds == pytest.approx(20_000 / 35 * 60)  # 20,000 pages at 35 a minute
    assert duration_words(timedelta(seconds=seconds)) == "9.5 hours"


def test_the_interval_is_the_configured_one_unless_a_pass_takes_longer(
    settings: Settings,
) -> None:
    settings.CATALOG_SYNC_INTERVAL_MINUTES = 60
    small = Catalog(name="small", braze_item_count=10_000)
    large = Catalog(name="large", braze_item_count=1_000_000)

    assert sync_interval(catalog=small, budget=DEFAULT_BUDGET) == timedelta(minutes=60)
    assert sync_interval(catalog=large, budget=DEFAULT_BUDGET) == timedelta(
        seconds=20_000 / 35 * 60
    )
    # A limit Braze raised for the workspace (learned from its headers) shortens it.
    assert sync_interval(catalog=large, budget=ReadBudget(300, 60.0)) == timedelta(
        seconds=20_000 / 300 * 60
    )


def test_the_schedule_does_not_start_a_pass_before_the_last_could_have_finished(
    products: Catalog,
    sync_client: BrazeClient,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    settings.CATALOG_SYNC_INTERVAL_MINUTES = 60
    monkeypatch.setattr(services, "catalog_sync_enqueue", lambda **_: None)
    Catalog.objects.update(last_full_sync_at=timezone.now())
    Catalog.objects.filter(pk=products.pk).update(
        last_full_sync_at=timezone.now() - timedelta(hours=2)
    )
    products.refresh_from_db()
    pages = -(-max(products.braze_item_count, 1) // 50)
    # A read limit at which this catalog's pass takes longer than the two hours since the last.
    slow = ReadBudget(1, 3 * 3600 / pages)
    monkeypatch.setattr(freshness, "read_budget", lambda: slow)

    assert services.catalog_sync_schedule(client=sync_client) == []

    monkeypatch.setattr(freshness, "read_budget", lambda: DEFAULT_BUDGET)
    started = services.catalog_sync_schedule(client=sync_client)
    assert [s.catalog.name for s in started] == ["products"]


def test_a_running_pass_shows_its_expected_end_from_its_own_pace(db: None) -> None:
    catalog = Catalog.objects.create(name="big", braze_item_count=100_000)
    sync = CatalogSync.objects.create(
        catalog=catalog,
        state=SyncState.RUNNING,
        items_done=25_000,
        items_expected=100_000,
        started_at=timezone.now() - timedelta(minutes=30),
    )

    seen = catalog_freshness(catalog=catalog, current=sync, budget=DEFAULT_BUDGET)

    assert seen.current == sync
    assert seen.next_pass_at is None  # not while a pass runs
    assert seen.current_expected_end is not None
    remaining = seen.current_expected_end - timezone.now()
    assert timedelta(minutes=89) < remaining < timedelta(minutes=91)  # 75,000 at 25,000/30 min


def test_the_catalog_page_says_how_old_the_mirror_is_and_how_long_a_pass_takes(
    client_for: Any, settings: Settings, db: None
) -> None:
    from console.roles import Role

    settings.CATALOG_SYNC_INTERVAL_MINUTES = 60
    catalog = Catalog.objects.create(
        name="big",
        braze_item_count=1_000_000,
        last_full_sync_at=timezone.now() - timedelta(hours=3),
        fields=[{"name": "id", "type": "string"}],
    )
    page: Client = client_for(Role.VIEWER)

    html = page.get(catalog.get_absolute_url()).content.decode()

    assert "3\xa0hours ago" in html
    assert "takes about 9.5 hours" in html
    assert "scheduled every 9.5 hours" in html
