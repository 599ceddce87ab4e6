"""What the limiter enforces: the limit groups, their configured limits and the shares that
background work may take (README "Being a good neighbour")."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

type Lane = Literal["interactive", "background"]

# Sends that may always go at once, however small the share: a person's page needs a few
# requests of a group together, and a handful of them is no clump a window would notice.
BURST_FLOOR = 5

GROUPS: tuple[str, ...] = (
    "catalogs_sync",
    "catalog_items_sync",
    "catalog_items_async",
    "catalog_fields_selections",
    "preference_center_read",
    "preference_center_write",
    "scim",
    "users_export_ids",
    "translations",
    "default",
)


@dataclass(frozen=True)
class GroupLimit:
    limit: int
    window_seconds: float  # in Braze's (unscaled) time


@dataclass(frozen=True)
class BrazeLimits:
    groups: Mapping[str, GroupLimit]
    workspace: str
    background_share: float = 0.7
    # Share of the limit kept free beyond the requests of other clients Braze's answers show.
    yield_margin: float = 0.05
    # Groups whose configured limit was set by hand: used even when Braze announces another.
    overrides: frozenset[str] = frozenset()
    # Benchmarks run the sandbox S times faster; the console must then use windows of W/S.
    clock_scale: float = 1.0
    margin_seconds: float = 0.5
    # Real seconds a cold-start probe may stay unanswered before another caller probes.
    probe_timeout_seconds: float = 5.0
    # Real seconds callers wait after a cold start while processes put back their sends.
    gather_seconds: float = 0.5
    # Learn Braze's fixed windows from its reset headers and align to them (docstring).
    align_fixed_windows: bool = True
    steps_to_align: int = 3
    cooldown_windows: int = 20
    # A learnt grid is Braze's, not ours: kept a day of windows, refreshed by every answer.
    grid_ttl_windows: int = 1440
    # Background sends are paced over this share of a grid window's open span (0: not paced).
    pace_share: float = 0.7
    # Off the grid, a stream of sends may run this share of the limit (at least BURST_FLOOR)
    # ahead of an even schedule over the window; 1: the log alone, unsmoothed.
    burst_share: float = 0.05

    def window(self, group: str) -> float:
        """The real-time window the limiter enforces, margin included."""
        return self.server_window(group) + self.margin_seconds

    def server_window(self, group: str) -> float:
        """Braze's window in real seconds (scaled in benchmarks), without our margin."""
        return self.groups[group].window_seconds / self.clock_scale

    def limit(self, group: str) -> int:
        return self.groups[group].limit

    def background_limit(self, group: str, limit: int | None = None) -> int:
        """Background work's cap in ``group``: its share of ``limit`` (default: configured)."""
        return background_cap(self.limit(group) if limit is None else limit, self.background_share)


def background_cap(limit: int, share: float) -> int:
    # The same rounding as the acquire script: a share meant as 70% of 100 gives 70, not 69.
    return max(1, math.floor(limit * share + 1e-9))


def margin_count(limit: int, margin: float) -> int:
    # Requests are whole: rounding up keeps at least the configured share free (3 of 50 at 5%).
    return math.ceil(limit * margin - 1e-9)


def background_room(limit: int, *, share: float, others: int, margin: float) -> int:
    """Requests per window background work may take: its share, and, while others are seen,
    no more than what their count plus the margin leaves (the acquire script's rule)."""
    room = limit if others <= 0 else max(1, limit - others - margin_count(limit, margin))
    return min(background_cap(limit, share), room)


def limits_from_settings(*, workspace: str | None = None) -> BrazeLimits:
    """The configured limits; ``workspace`` names whose they are (default: the settings')."""
    config: Mapping[str, Any] = settings.BRAZE_RATE_LIMITS
    groups = {
        name: GroupLimit(int(limit), float(window))
        for name, (limit, window) in config["groups"].items()
    }
    missing = set(GROUPS) - set(groups)
    if missing:
        raise ValueError(f"BRAZE_RATE_LIMITS lacks groups {sorted(missing)}")
    return BrazeLimits(
        groups=groups,
        workspace=workspace if workspace is not None else str(config["workspace"]),
        background_share=float(config["background_share"]),
        yield_margin=float(config.get("yield_margin", 0.05)),
        overrides=frozenset(config.get("overrides", ())),
        clock_scale=float(config["clock_scale"]),
        margin_seconds=float(config["margin_seconds"]),
        probe_timeout_seconds=float(config.get("probe_timeout_seconds", 5.0)),
        gather_seconds=float(config.get("gather_seconds", 0.5)),
        align_fixed_windows=bool(config.get("align_fixed_windows", True)),
        burst_share=float(config.get("burst_share", 0.05)),
    )
