#!/usr/bin/env python3
"""Catalog sync benchmark: a full pass against the sandbox with a scaled clock.

Starts a sandbox whose demo ``products`` catalog has N items (default 20,000) and whose
limit windows last 60/S seconds, scales the console's limiter the same way, then runs the
console's own sync service (the code the Celery task runs) over the whole catalog. A sync is
background work: it takes at most its share of the group (default 0.7), so its ceiling is
share x 50 requests/min x 50 items per (scaled) minute; the sandbox's request log is the
referee. Pass lines: achieved/ceiling ≥ 0.95, no 429, every item mirrored. The sandbox plays
the reference profile (50/min synchronous items, as today's Braze), said in the first line.

    scripts/bench-catalog sync [--items 20000] [--scale 6] [--background-share 0.7]

Run through scripts/bench-catalog (a throw-away PostgreSQL and Redis).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMIT, PAGE = 50, 50  # catalog_items_sync: 50 requests per minute, 50 items per page


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument(
        "--background-share",
        type=float,
        default=0.7,
        help="background work's share of the group (the console's default)",
    )
    args = parser.parse_args()

    from tests.fixtures.sandbox import start_sandbox

    sandbox = start_sandbox(
        Path(tempfile.mkdtemp(prefix="bench-sync-")),
        seed_demo=True,
        seed_products=args.items,
        clock_scale=args.scale,
        profile="reference",
    )
    os.environ.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        BRAZE_REST_ENDPOINT=sandbox.url,
        BRAZE_API_KEY=sandbox.api_key,
        BRAZE_RATE_LIMIT_CLOCK_SCALE=str(args.scale),
        BRAZE_RATE_LIMIT_MARGIN_SECONDS=str(args.margin),
        BRAZE_RATE_LIMIT_BACKGROUND_SHARE=str(args.background_share),
        BRAZE_RATE_LIMIT_WORKSPACE=f"bench-{os.getpid()}",
    )
    import django

    django.setup()
    from catalogs.models import Catalog, CatalogItem, CatalogSync
    from catalogs.services import catalog_mirror_refresh, catalog_sync_step
    from console.braze import get_client

    window = 60.0 / args.scale
    try:
        client = get_client(lane="background", max_wait=window * 1.5 + 5)
        catalog_mirror_refresh(client=client)
        catalog = Catalog.objects.get(name="products")
        # The pass a "Refresh from Braze" queues, run here in-process instead of by a worker.
        sync = CatalogSync.objects.create(catalog=catalog, trigger="benchmark")
        since = time.time()
        started = time.perf_counter()
        while True:
            run = catalog_sync_step(sync_id=sync.pk, client=client)
            if run.retry_in is None:
                break
            time.sleep(run.retry_in)
        elapsed = time.perf_counter() - started
        sync.refresh_from_db()
        mirrored = CatalogItem.objects.filter(catalog=catalog).count()
        stats = sandbox.admin.group_stats("catalog_items_sync", since=since)
    finally:
        sandbox.stop()

    pages = sync.pages_done
    # Ideal: L requests may go at once, then L per window: ceil(pages/L) - 1 windows.
    share = math.floor(LIMIT * args.background_share + 1e-9)  # requests per window
    ceiling_per_s = share * PAGE / window
    achieved_per_s = mirrored / elapsed
    full = stats.get("full_windows", 0)
    steady = (
        stats.get("mean_items_accepted_per_full_window", 0) / (share * PAGE)
        if stats.get("mean_items_accepted_per_full_window")
        else None
    )
    per_window = [w["own_counted"] for w in stats.get("windows", [])][1:-1]
    steady_requests = sum(per_window) / (len(per_window) * share) if per_window else None
    ratio = achieved_per_s / ceiling_per_s
    print(
        f"catalog sync benchmark: sandbox profile reference (catalog_items_sync {LIMIT}/min), "
        f"{args.items:,} items, S={args.scale:g} (window {window:.1f}s), background share "
        f"{args.background_share} ({share} requests per window), margin {args.margin}s, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"state {sync.state}; {pages} pages; {mirrored:,} items mirrored; {elapsed:.1f}s real")
    print(
        f"429s from the sandbox: {stats.get('rate_limited', 0)}; "
        f"peak requests in a server window: {stats.get('peak_fixed_window_ratio', 0):.2f} × L"
    )
    print(
        f"end to end: {achieved_per_s * 60 / args.scale:,.0f} items/min (Braze minutes) = "
        f"{ratio:.3f} × ceiling {share * PAGE:,} items/min"
    )
    if steady_requests is not None:
        print(
            f"steady state ({len(per_window)} full server windows): "
            f"{steady_requests:.3f} × ceiling (requests per window / L)"
        )
    if steady is not None:
        print(f"sandbox items_accepted per full window / (share×50): {steady:.3f} ({full} windows)")
    # A large catalog's pass is almost all steady state (the first window's burst is lost in
    # it); a run too short for five full windows has only its end-to-end pace to go by.
    steady_enough = steady_requests is not None and len(per_window) >= 5
    _print_time_to_fresh(float(steady_requests or 0) if steady_enough else ratio, share)
    ok = (
        sync.state == "succeeded"
        and mirrored == args.items
        and stats.get("rate_limited", 0) == 0
        and (steady_requests or ratio) >= 0.95
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _print_time_to_fresh(measured: float, share: int) -> None:
    """Time to a fresh mirror at Braze's real clock (S=1), for catalogs of several sizes: the
    read ceiling in effect gives the ideal pass; the pace measured above, the expected one.
    The schedule's interval (catalogs/freshness.py) must be at least the pass it waits for."""
    from datetime import timedelta

    from catalogs.freshness import ReadBudget, duration_words, pass_seconds_expected, sync_interval
    from catalogs.models import Catalog

    budget = ReadBudget(share, 60.0)
    print(
        f"time to fresh at the read ceiling in effect ({share} requests/min for background work):"
    )
    for items in (10_000, 100_000, 1_000_000):
        ideal = pass_seconds_expected(items=items, budget=budget)
        expected = ideal / measured if measured else float("inf")
        interval = sync_interval(catalog=Catalog(braze_item_count=items), budget=budget)
        print(
            f"  {items:>9,} items: ideal {duration_words(timedelta(seconds=ideal))}, "
            f"at the measured pace {duration_words(timedelta(seconds=expected))} "
            f"(ideal/expected {ideal / expected:.3f}); scheduled every "
            f"{duration_words(interval)} (interval/ideal pass "
            f"{interval.total_seconds() / ideal:.2f} ≥ 1: passes never overlap)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
