"""The limiter's figures as pages show them: the home page, ``braze_check`` and /metrics."""

from __future__ import annotations

from typing import Any

import redis

from console.braze.limiter.limits import limits_from_settings
from console.braze.limiter.sliding_log import RateLimiter


def limits_in_effect(limiter: RateLimiter | None = None) -> list[dict[str, Any]]:
    """Rows for pages: each group's configured and learned limit (Braze time) and its use.

    ``learned`` is what Braze last announced (None before any answer, or without Redis);
    ``limit`` is the one in effect: the learned one unless the group is overridden.
    """
    limits = limiter.limits if limiter is not None else limits_from_settings()
    rows = []
    for name, group in limits.groups.items():
        usage = None
        if limiter is not None:
            try:
                usage = limiter.usage(group=name)
            except redis.RedisError:
                usage = None
        limit = usage.limit if usage else group.limit
        rows.append(
            {
                "group": name,
                "configured": group.limit,
                "override": name in limits.overrides,
                "learned": usage.learned if usage else None,
                "limit": limit,
                "window_seconds": group.window_seconds,
                "background_limit": usage.background_limit
                if usage
                else limits.background_limit(name, limit),
                "others": usage.others if usage else 0,
            }
        )
    return rows


def limiter_state(*, limiter: RateLimiter) -> list[dict[str, Any]]:
    """Rows for /metrics: per group, the limit in effect (and the configured one, and what
    Braze last announced: None before any answer) and its window, the sends in the current
    window, other clients' requests seen in Braze's window, how long Braze blocked it for,
    and whether its fixed windows are learnt."""
    rows = []
    for group in limiter.limits.groups:
        usage = limiter.usage(group=group)
        rows.append(
            {
                "group": group,
                "limit": usage.limit,
                "configured": usage.configured or limiter.limits.limit(group),
                "learned": usage.learned,
                "others": usage.others,
                "background_limit": usage.background_limit,
                "window_seconds": usage.window_seconds,
                "used": usage.used,
                "blocked_seconds": usage.blocked_for,
                "aligned": limiter.aligned(group=group),
                "requests_per_second": limiter.requests_per_second(group=group),
            }
        )
    return rows
