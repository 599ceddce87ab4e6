"""How fresh a catalog's mirror is, and how often a full pass can honestly be scheduled.

A full pass reads every item, 50 per request, in the synchronous item group (50 requests a
minute by default) and takes only background work's share of it: a million items are 20,000
requests, about 9.5 hours at 35 a minute. A fixed hourly schedule would then start a pass that
can never finish before the next is due and hold the workspace's read limit for ever, so each
catalog's interval is at least the time its pass is expected to take, from its size and the
limit in effect (learned from Braze's headers when it has answered). Between passes the
console's own writes and bulk read-backs keep the mirror current.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from catalogs.models import Catalog, CatalogSync

ITEMS_PER_PAGE = 50  # Braze's page of "List multiple catalog item details"
READ_GROUP = "catalog_items_sync"


@dataclass(frozen=True)
class ReadBudget:
    """Background work's requests per window in the item read group, as in effect now."""

    requests: int
    window_seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.requests / self.window_seconds


@dataclass(frozen=True)
class Freshness:
    last_complete_at: datetime | None
    expected_pass: timedelta
    interval: timedelta
    next_pass_at: datetime | None
    current: CatalogSync | None
    current_expected_end: datetime | None

    @property
    def age(self) -> timedelta | None:
        return timezone.now() - self.last_complete_at if self.last_complete_at else None

    @property
    def expected_pass_words(self) -> str:
        return duration_words(self.expected_pass)

    @property
    def interval_words(self) -> str:
        return duration_words(self.interval)


def duration_words(span: timedelta) -> str:
    """ "40 seconds", "12 minutes", "6.7 hours": the unit a reader would use."""
    seconds = span.total_seconds()
    if seconds < 90:
        return f"{max(1, round(seconds))} seconds"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} minutes"
    hours = seconds / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def read_budget() -> ReadBudget:
    # Lazy: the limiter module builds its Redis client from settings at call time.
    from console.braze import get_limiter
    from console.braze.limiter.reports import limits_in_effect

    # Without Redis the rows fall back to the configured limits (limits_in_effect says so).
    rows = limits_in_effect(get_limiter())
    row = next(r for r in rows if r["group"] == READ_GROUP)
    return ReadBudget(max(1, int(row["background_limit"])), float(row["window_seconds"]))


def pass_seconds_expected(*, items: int, budget: ReadBudget) -> float:
    pages = max(1, math.ceil(items / ITEMS_PER_PAGE))
    return pages / budget.pages_per_second


def _items(catalog: Catalog) -> int:
    return max(catalog.braze_item_count, catalog.mirror_item_count)


def sync_interval(*, catalog: Catalog, budget: ReadBudget) -> timedelta:
    """The configured interval, or the pass's expected duration when that is longer."""
    configured = settings.CATALOG_SYNC_INTERVAL_MINUTES * 60.0
    return timedelta(
        seconds=max(configured, pass_seconds_expected(items=_items(catalog), budget=budget))
    )


def _expected_end(sync: CatalogSync, budget: ReadBudget, items: int) -> datetime | None:
    if sync.started_at is None:
        return None
    expected_total = sync.items_expected or items
    remaining = max(0, expected_total - sync.items_done)
    elapsed = (timezone.now() - sync.started_at).total_seconds()
    if sync.items_done and elapsed > 0:
        # The pass's own pace: other catalogs' passes and neighbours share the read limit.
        rate = sync.items_done / elapsed
    else:
        rate = budget.pages_per_second * ITEMS_PER_PAGE
    return timezone.now() + timedelta(seconds=remaining / rate)


def catalog_freshness(
    *, catalog: Catalog, current: CatalogSync | None, budget: ReadBudget | None = None
) -> Freshness:
    budget = budget or read_budget()
    interval = sync_interval(catalog=catalog, budget=budget)
    active = current if current is not None and current.is_active else None
    last = catalog.last_full_sync_at
    return Freshness(
        last_complete_at=last,
        expected_pass=timedelta(
            seconds=pass_seconds_expected(items=_items(catalog), budget=budget)
        ),
        interval=interval,
        next_pass_at=None if active or last is None else last + interval,
        current=active,
        current_expected_end=_expected_end(active, budget, _items(catalog)) if active else None,
    )
