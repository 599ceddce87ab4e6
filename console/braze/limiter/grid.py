"""The learnt fixed-window grid (README "Fixed windows").

An optimisation, and a module that can be deleted: without it (``RateLimiter(grid=None)``,
the state when ``align_fixed_windows`` is off) the sliding log alone keeps every server
algorithm safe, at about 0.94 of a fixed-window server's ceiling on long jobs instead of
1.0. To delete it: remove this file, ``lua/grid_wait.lua`` and ``lua/observe.lua``, and the
lines of ``sliding_log.py`` and ``cold_start.py`` that name ``grid``.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable
from typing import Any

import redis

from console.braze.limiter.keys import GroupKeys
from console.braze.limiter.limits import BrazeLimits, Lane
from console.braze.limiter.permit import Permit
from console.braze.limiter.scripts import Clock, Script

log = logging.getLogger(__name__)

# Put into acquire.lua: the wait on a learnt grid.
ACQUIRE_SOURCE = "grid_wait.lua"


def guards(limits: BrazeLimits, group: str) -> tuple[float, float] | None:
    """Seconds kept free after and before each fixed-window boundary, when aligning.

    None when alignment is off or cannot pay: the reset header has whole seconds, so the
    window must be a whole number of seconds, and the span left open at least half of it.
    """
    window = limits.server_window(group)
    opening, closing = limits.margin_seconds, 1.0 + 2 * limits.margin_seconds
    if not limits.align_fixed_windows or abs(window - round(window)) > 1e-9:
        return None
    if window - opening - closing < window / 2:
        return None
    return opening, closing


class FixedWindowGrid:
    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        limits: BrazeLimits,
        keys: Callable[[str], GroupKeys],
        clock: Clock | None = None,
    ) -> None:
        self.redis = redis_client
        self.limits = limits
        self._keys = keys
        self._observe = Script(redis_client, "observe.lua", clock=clock)
        # The grid each group was last seen aligned to (µs phase), put back after a flush.
        self._phase: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire_args(self, group: str, lane: Lane) -> dict[str, int]:
        """Braze's window, the two guards and the span background sends are paced over, in µs
        (zeros: never align). The script divides that span by the requests it may take."""
        found = guards(self.limits, group)
        if found is None:
            return {
                "grid_span_us": 0,
                "grid_opening_us": 0,
                "grid_closing_us": 0,
                "grid_pace_us": 0,
            }
        window = self.limits.server_window(group)
        opening, closing = found
        pace = 0.0
        if lane == "background":
            pace = (window - opening - closing) * self.limits.pace_share
        return {
            "grid_span_us": round(window * 1_000_000),
            "grid_opening_us": math.ceil(opening * 1_000_000),
            "grid_closing_us": math.ceil(closing * 1_000_000),
            "grid_pace_us": math.floor(pace * 1_000_000),
        }

    def ttl_ms(self, group: str, windows: int) -> int:
        return max(1, math.ceil(self.limits.server_window(group) * windows * 1000))

    def observe(self, *, group: str, permit: Permit, reset: str | None) -> None:
        """Learn from an answer's ``X-RateLimit-Reset`` whether Braze counts fixed windows.

        Only whole epoch seconds are read: a reset in any other form tells nothing about a
        grid. Never raises: aligning is an optimisation.
        """
        call = self.observe_call(group=group, permit=permit, reset=reset)
        if call is None:
            return
        keys, args = call
        try:
            outcome, phase = self._observe(keys=keys, args=args)
        except redis.RedisError:
            return
        self.observed(group=group, outcome=int(outcome), phase=int(phase))

    def observe_call(
        self, *, group: str, permit: Permit, reset: str | None
    ) -> tuple[dict[str, str], dict[str, Any]] | None:
        """The keys and arguments of observe.lua for this answer; None when it has nothing
        to learn (no grid to align to, or a reset that is not whole epoch seconds)."""
        found = guards(self.limits, group)
        if found is None or not permit.at_us or not reset or not reset.isdigit():
            return None
        announced = int(reset)
        if not 1e9 <= announced < 1e11:
            return None
        opening, closing = found
        keys = self._keys(group).pick(
            "grid", "gridobs", "gridoff", "settled_earlier", "settled_later"
        )
        args: dict[str, Any] = {
            "reset": announced,
            "span_s": round(self.limits.server_window(group)),
            "sent_us": permit.at_us,
            "opening_us": math.ceil(opening * 1_000_000),
            "closing_us": math.ceil(closing * 1_000_000),
            "steps": self.limits.steps_to_align,
            "ttl_ms": self.ttl_ms(group, self.limits.grid_ttl_windows),
            "witness_us": math.ceil((1.0 + opening) * 1_000_000),
            "member": uuid.uuid4().hex,
            "background": permit.background,
        }
        return keys, args

    def observed(self, *, group: str, outcome: int, phase: int) -> None:
        """What observe.lua answered: 1 aligned (at ``phase``), 0 learning, -1 contradicted."""
        with self._lock:
            if outcome == 1:
                self._phase[group] = phase
            elif outcome == -1:
                self._phase.pop(group, None)
        if outcome == -1:
            log.warning(
                "Braze group %s: an answer did not fit its fixed windows; back to the sliding log",
                group,
            )

    def forget(self, group: str) -> None:
        """A 429 drops the grid (block.lua does so in Redis)."""
        with self._lock:
            self._phase.pop(group, None)

    def put_back(self, group: str) -> None:
        """After a flush: a flush of our Redis does not change Braze's windows, so the grid
        this process last saw is put back (every answer still checks it)."""
        with self._lock:
            phase = self._phase.get(group)
        if phase is None:
            return
        ttl = self.ttl_ms(group, self.limits.grid_ttl_windows)
        try:
            self.redis.set(self._keys(group).grid, phase, px=ttl, nx=True)
        except redis.RedisError:
            return

    def aligned(self, *, group: str) -> bool:
        """Whether the group takes slots on Braze's learnt fixed-window grid."""
        return bool(self.redis.exists(self._keys(group).grid))
