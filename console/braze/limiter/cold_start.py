"""The cold start (README "Cold start"): after a Redis flush each process puts back its own
recent sends, then one probe's answer settles what the log still lacks."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

import redis

from console.braze.limiter.grid import FixedWindowGrid
from console.braze.limiter.keys import GroupKeys
from console.braze.limiter.limits import BrazeLimits
from console.braze.limiter.scripts import Clock, Script

log = logging.getLogger(__name__)

# How often callers look again while another caller's cold-start probe is out.
PROBE_POLL_SECONDS = 0.02
# Sends put back per script call.
_RESTORE_BATCH = 500


class ColdStart:
    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        limits: BrazeLimits,
        keys: Callable[[str], GroupKeys],
        grid: FixedWindowGrid | None,
        clock: Clock | None = None,
    ) -> None:
        self.limits = limits
        self._keys = keys
        self._grid = grid
        self._restore = Script(redis_client, "restore.lua", clock=clock)
        self._settle = Script(redis_client, "settle.lua", clock=clock)
        self._release = Script(redis_client, "release.lua", clock=clock)
        # This process's own sends of the last window per group, as (Redis µs, member):
        # what it puts back into the log after a Redis restart or flush.
        self._sent: dict[str, deque[tuple[int, str]]] = {}
        self._restored_in: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def acquire_args(self, group: str) -> dict[str, int | bool]:
        gather_us = math.ceil(self.limits.gather_seconds * 1_000_000)
        probe_ttl_ms = math.ceil(self.limits.probe_timeout_seconds * 1000)
        return {
            "probe_ttl_ms": probe_ttl_ms,
            "probe_poll_us": math.ceil(PROBE_POLL_SECONDS * 1_000_000),
            "gather_us": gather_us,
            # Outlives every probe of the episode, so it is gathered once.
            "gather_ttl_ms": probe_ttl_ms * 4 + gather_us // 1000,
            # Only a process with sends of its own to put back starts the gathering (a fresh
            # deployment's first process has nothing to wait for).
            "remembers": self._remembers(group),
        }

    def _window_us(self, group: str) -> int:
        return math.ceil(self.limits.window(group) * 1_000_000)

    def _remembers(self, group: str) -> bool:
        """Whether this process sent on the group within the last window."""
        # Redis time and ours differ little next to a window.
        oldest = time.time() * 1_000_000 - self._window_us(group)
        with self._lock:
            sent = self._sent.get(group)
            return bool(sent) and sent is not None and sent[-1][0] > oldest

    def remember(self, group: str, now_us: int, token: str) -> None:
        oldest = now_us - self._window_us(group)
        with self._lock:
            sent = self._sent.setdefault(group, deque())
            sent.append((now_us, token))  # the log's own member: putting it back is idempotent
            while sent and sent[0][0] <= oldest:
                sent.popleft()

    def put_back(self, group: str, episode: bytes) -> None:
        """After a flush, put this process's own recent sends back into the log (once)."""
        with self._lock:
            if self._restored_in.get(group) == episode:
                return
            self._restored_in[group] = episode
            entries = list(self._sent.get(group, ()))
        keys = self._keys(group).pick("log")
        for start in range(0, len(entries), _RESTORE_BATCH):
            batch = [[score, member] for score, member in entries[start : start + _RESTORE_BATCH]]
            try:
                self._restore(keys=keys, args={"window_us": self._window_us(group), "sends": batch})
            except redis.RedisError:
                log.warning("could not put back this process's sends for group %s", group)
                return
        if self._grid is not None:
            self._grid.put_back(group)

    def settle(
        self, *, group: str, token: str, limit: int, used: int | None, reset_at: float | None
    ) -> int:
        """End the cold start with the probe's answer; returns the log entries added.

        ``used`` is what Braze counts in its window (limit minus remaining, the probe
        included) and ``reset_at`` the epoch second it announced; None when the answer did
        not say (then the group is simply marked alive). The marker is set either way.
        """
        args = {
            "token": token,
            "used": -1 if used is None else min(max(used, 0), limit),
            "reset_us": -1 if reset_at is None else math.ceil(reset_at * 1_000_000),
            "window_us": self._window_us(group),
            "server_window_us": math.ceil(self.limits.server_window(group) * 1_000_000),
            "suffix": uuid.uuid4().hex,
        }
        try:
            added, _now = self._settle(
                keys=self._keys(group).pick("log", "alive", "probe", "gather"), args=args
            )
        except redis.RedisError:
            # The probe key expires by itself, so another caller will probe again.
            log.warning("could not settle the cold-start probe of group %s", group)
            return 0
        if added:
            log.info("Braze group %s: seeded %d requests Braze still counts", group, added)
        return int(added)

    def release(self, *, group: str, token: str) -> None:
        """Give up a probe that got no answer, so the next caller probes at once."""
        try:
            self._release(keys=self._keys(group).pick("probe"), args={"token": token})
        except redis.RedisError:
            log.warning("could not release the cold-start probe of group %s", group)
