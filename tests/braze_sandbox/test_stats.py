"""The referee's figures: what a benchmark's utilization is computed from."""

from __future__ import annotations

from typing import Any

from braze_sandbox.stats import group_stats


def _entry(t: float, items: int = 50) -> dict[str, Any]:
    return {
        "t": t,
        "counted": True,
        "external": False,
        "status": 202,
        "window_seconds": 10.0,
        "injected": None,
        "item_count": items,
        "item_ids": [f"{t}-{i}" for i in range(items)],
        "method": "PATCH",
        "path": "/catalogs/products/items",
    }


def test_a_window_without_requests_between_the_first_and_last_counts_as_lost() -> None:
    # Windows 0 and 4 are partial; 1 and 3 are full; 2 had nothing (a stalled client).
    entries = [_entry(5.0), _entry(12.0), _entry(15.0), _entry(31.0), _entry(35.0), _entry(41.0)]

    stats = group_stats(entries, limit=100)

    assert [w["own_counted"] for w in stats["windows"]] == [1, 2, 0, 2, 1]
    assert stats["full_windows"] == 3
    # 4 requests of 50 items in the 3 full windows (30 s), not in the 2 that had requests.
    assert stats["items_accepted_per_second_in_full_windows"] == 200 / 30


def test_one_window_alone_is_partial_so_there_is_no_steady_state() -> None:
    stats = group_stats([_entry(5.0)], limit=100)

    assert [w["own_counted"] for w in stats["windows"]] == [1]
    assert stats["full_windows"] == 0
    assert stats["items_accepted_per_second_in_full_windows"] is None
