"""Request-log statistics: the referee's numbers for rate-limit benchmarks."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Any

from braze_sandbox.store import Store


def read_log(
    store: Store,
    *,
    since: float | None = None,
    until: float | None = None,
    workspace: str | None = None,
    group: str | None = None,
    after_id: int | None = None,
) -> list[dict[str, Any]]:
    clauses, params = ["1=1"], []
    for clause, value in (
        ("t >= ?", since),
        ("t < ?", until),
        ("workspace = ?", workspace),
        ("grp = ?", group),
        ("id > ?", after_id),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    rows = store.q(
        f"SELECT * FROM request_log WHERE {' AND '.join(clauses)} ORDER BY id",  # noqa: S608
        params,
    )
    return [
        {
            "id": r["id"],
            "t": r["t"],
            "t_end": r["t_end"],
            "key": r["key_name"],
            "workspace": r["workspace"],
            "group": r["grp"],
            "method": r["method"],
            "path": r["path"],
            "status": r["status"],
            "item_ids": json.loads(r["item_ids"]),
            "item_count": r["item_count"],
            "counted": bool(r["counted"]),
            "external": bool(r["external"]),
            "injected": r["injected"],
            "window_seconds": r["window_seconds"],
            "algorithm": r["algorithm"],
        }
        for r in rows
    ]


def _peak_sliding(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def group_stats(entries: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    own = [e for e in entries if not e["external"]]
    window = entries[-1]["window_seconds"] or 1.0
    counted_times = sorted(e["t"] for e in entries if e["counted"])
    per_window: dict[int, dict[str, int]] = defaultdict(
        lambda: {"counted": 0, "own_counted": 0, "rate_limited": 0, "items_accepted": 0}
    )
    for e in entries:
        slot = per_window[math.floor(e["t"] / window)]
        if e["counted"]:
            slot["counted"] += 1
            if not e["external"]:
                slot["own_counted"] += 1
        if e["status"] == 429:
            slot["rate_limited"] += 1
        if not e["external"] and 200 <= e["status"] < 300:
            slot["items_accepted"] += e["item_count"]
    # A window without a request between the first and the last is a window lost to the
    # client (a stall, a restart): it must weigh on the steady-state figures, not vanish.
    indexes = range(min(per_window), max(per_window) + 1) if per_window else range(0)
    windows = [{"start": index * window, **per_window[index]} for index in indexes]
    # The first and last windows are usually partial; steady-state figures leave them out.
    full = windows[1:-1]
    accepted: Counter[tuple[str, str, str]] = Counter()
    for e in own:
        if 200 <= e["status"] < 300 and e["method"] in {"POST", "PUT", "PATCH", "DELETE"}:
            for item_id in e["item_ids"]:
                accepted[(e["method"], e["path"].split("?")[0], item_id)] += 1
    peak_fixed = max((w["counted"] for w in windows), default=0)
    peak_sliding = _peak_sliding(counted_times, window) if counted_times else 0
    return {
        "limit": limit,
        "window_seconds_real": window,
        "requests": len(own),
        "external_requests": len(entries) - len(own),
        "status_counts": dict(Counter(str(e["status"]) for e in own)),
        "rate_limited": sum(1 for e in own if e["status"] == 429),
        "external_rate_limited": sum(1 for e in entries if e["external"] and e["status"] == 429),
        "counted": len(counted_times),
        "injected": dict(Counter(e["injected"] for e in own if e["injected"])),
        "items_accepted": sum(e["item_count"] for e in own if 200 <= e["status"] < 300),
        "duplicate_item_writes": sum(n - 1 for n in accepted.values() if n > 1),
        "peak_requests_in_fixed_window": peak_fixed,
        "peak_fixed_window_ratio": peak_fixed / limit if limit else None,
        "peak_requests_in_sliding_window": peak_sliding,
        "peak_sliding_window_ratio": peak_sliding / limit if limit else None,
        "full_windows": len(full),
        "mean_items_accepted_per_full_window": (
            sum(w["items_accepted"] for w in full) / len(full) if full else None
        ),
        "items_accepted_per_second_in_full_windows": (
            sum(w["items_accepted"] for w in full) / (len(full) * window) if full else None
        ),
        "windows": windows,
    }


def compute(store: Store, limits: dict[str, int], **filters: Any) -> dict[str, Any]:
    entries = read_log(store, **filters)
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        if e["group"] and e["workspace"]:
            by_key[(e["workspace"], e["group"])].append(e)
    return {
        "entries": len(entries),
        "unauthenticated": sum(1 for e in entries if e["workspace"] is None),
        "groups": [
            {"workspace": ws, "group": grp, **group_stats(items, limits.get(grp, 0))}
            for (ws, grp), items in sorted(by_key.items())
        ],
    }
