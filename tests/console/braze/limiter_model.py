"""A pure-Python model of one limit group: the sliding log, learned limits, the neighbour rule,
blocks and the cold-start probe (README.md in console/braze/limiter), without the learnt grid.

It says what the Lua scripts must answer, step by step, on a clock the test drives; the
property tests in test_limiter_model.py run both on random interleavings and compare.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Config:
    limit: int  # configured
    window_us: int  # Braze's window plus our margin
    span_us: int  # Braze's window
    share: float
    yield_margin: float
    pace_us: int  # background sends off the grid are paced over this span while others show
    probe_poll_us: int
    burst_share: float = 1.0  # 1: no even schedule ("Steady sending")
    burst_floor: int = 5


@dataclass
class Others:
    e: int = -1  # the end of the window the current figure is for
    cur: int = 0
    w: float = 0.0
    prev: int = 0
    pw: float = 0.0
    others: int = 0
    until: int = 0


@dataclass
class Model:
    config: Config
    log: dict[str, int] = field(default_factory=dict)  # member -> time (µs)
    bg: dict[str, int] = field(default_factory=dict)
    blocked: int = 0
    learnt: int = 0
    alive: bool = False
    probe: str | None = None
    slot: int | None = None
    steady: int = 0  # when the even schedule is next due
    seen: Others | None = None
    in_effect: int = 0  # what the process last heard the limit in effect is
    seeded: int = 0  # names the entries a probe's answer adds

    def __post_init__(self) -> None:
        self.in_effect = self.config.limit

    def flush(self) -> None:
        """A Redis flush: every key goes (a new process starts without memory)."""
        self.log, self.bg, self.blocked, self.learnt = {}, {}, 0, 0
        self.alive, self.probe, self.slot, self.seen = False, None, None, None
        self.steady = 0
        self.in_effect = self.config.limit

    @staticmethod
    def _expire(log: dict[str, int], oldest: int) -> None:
        for member in [m for m, t in log.items() if t <= oldest]:
            del log[member]

    def _wait_for(self, log: dict[str, int], n_max: int, now: int) -> int:
        self._expire(log, now - self.config.window_us)
        if len(log) < n_max:
            return 0
        return sorted(log.values())[len(log) - n_max] + self.config.window_us - now

    def _limit(self) -> int:
        return self.learnt if self.learnt > 0 else self.config.limit

    def acquire(self, *, now: int, background: bool, member: str) -> tuple[bool, int, bool, int]:
        """(allowed, wait µs, is the probe, cold: 0 no, 1 yes)."""
        c = self.config
        limit = self._limit()
        self.in_effect = limit
        cap = room = limit
        others = 0
        if background:
            cap = max(1, math.floor(limit * c.share + 1e-9))
            if self.seen is not None and now < self.seen.until:
                others = self.seen.others
            if others > 0:
                room = max(1, limit - others - math.ceil(limit * c.yield_margin - 1e-9))
        budget = min(cap, room)
        if self.blocked > now:
            return False, self.blocked - now, False, 0
        cold = probing = 0
        if not self.alive:
            cold = 1
            if self.probe is not None:
                return False, c.probe_poll_us, False, 1
            probing = 1
        wait = self._wait_for(self.log, room, now)
        step = steady_due = 0
        if c.burst_share < 1:
            # Sends run at most a burst ahead of a schedule one window / limit apart.
            step = c.window_us // limit
            burst = max(min(limit, c.burst_floor), math.ceil(limit * c.burst_share - 1e-9))
            steady_due = max(now, self.steady)
            wait = max(wait, steady_due - (burst - 1) * step - now)
        pace, last_slot = 0, None
        if background:
            wait = max(wait, self._wait_for(self.bg, cap, now))
            pace = c.pace_us // budget
            last_slot = self.slot
            if last_slot is None and self.bg:
                last_slot = max(self.bg.values())
            if others > 0 and pace > 0 and last_slot is not None:
                wait = max(wait, last_slot + pace - now)
        if wait > 0:
            return False, wait, False, cold
        self.log[member] = now
        if step > 0:
            self.steady = steady_due + step
        if background:
            self.bg[member] = now
            slot = now
            due = last_slot + pace if last_slot is not None else None
            if others > 0 and pace > 0 and due is not None and now - due < pace:
                slot = due
            self.slot = slot
        if probing:
            self.probe = member
        return True, 0, bool(probing), cold

    def learn(self, *, limit: int, remaining: int, at: int) -> int | None:
        """An answer without a reset header: others' count over the last window."""
        if limit > 0:
            self.learnt = limit
            self.in_effect = limit
        if limit <= 0 or remaining < 0 or at <= 0:
            return None
        span = self.config.span_us
        mine = sum(1 for t in self.log.values() if at - span <= t <= at)
        est = max(0, limit - remaining - mine)
        epoch = (at // span + 1) * span
        seen = self.seen or Others()
        if epoch == seen.e:
            if seen.w <= 1:
                seen.cur, seen.w = est, 1
        elif epoch > seen.e:
            if epoch - seen.e < 2 * span:
                seen.prev, seen.pw = seen.cur, seen.w
            else:
                seen.prev, seen.pw = 0, 0
            seen.e, seen.cur, seen.w = epoch, est, 1
        seen.others = seen.cur if seen.w >= seen.pw else max(seen.cur, seen.prev)
        seen.until = seen.e + span
        self.seen = seen
        return est

    def block(self, *, now: int, duration: int, only_if_room: bool) -> int:
        """Blocked until (µs); 0 when nothing was blocked."""
        if only_if_room:
            self._expire(self.log, now - self.config.window_us)
            if len(self.log) >= self.in_effect:
                return 0
        until = now + duration
        if until > self.blocked:
            self.blocked = until
        return self.blocked

    def settle(self, *, now: int, token: str, used: int) -> int:
        """The probe's answer without a reset: what the log lacks is added as sent now."""
        used = min(max(used, 0), self.in_effect)
        added = 0
        if used > 0:
            self._expire(self.log, now - self.config.window_us)
            for _ in range(1, used):  # the probe itself is known
                self.seeded += 1
                self.log[f"braze:{self.seeded}"] = now
                added += 1
        self.alive = True
        if self.probe == token:
            self.probe = None
        return added

    def release(self, *, token: str) -> None:
        if self.probe == token:
            self.probe = None

    def usage(self, *, now: int) -> tuple[int, int, int, int]:
        """(sends in the window, blocked until, learnt limit, others)."""
        self._expire(self.log, now - self.config.window_us)
        others = self.seen.others if self.seen is not None and now < self.seen.until else 0
        return len(self.log), self.blocked, self.learnt, others
