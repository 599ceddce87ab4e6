"""One request's slot: ``with limiter.slot(group, lane, max_wait=…) as slot: … slot.answer(r)``.

The context manager owns the order of the limiter's calls, on every path:

- entering waits for a slot (``acquire``; raises BrazeRateLimited when the wait is too long);
- ``answer`` keeps what Braze's headers say (``learn``); on a 429 it blocks the group until
  the announced reset, then settles a cold-start probe (blocked first, so nobody slips in
  between the marker and the block) and returns the refusal; on any other answer it settles
  the probe with Braze's count, checks the learnt grid (``observe``) and blocks the group
  when Braze says nothing is left while our log still has room;
- leaving without an answer (an exception, or a request that never reached Braze) gives the
  probe's turn to the next caller (``probe_release``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from console.braze.limiter.headers import parse_rate_limit_reset, parse_retry_after
from console.braze.limiter.limits import Lane
from console.braze.limiter.permit import Permit

if TYPE_CHECKING:  # the limiter makes slots: importing it at run time would be a cycle
    from console.braze.limiter.sliding_log import RateLimiter


class Answer(Protocol):
    """What a slot needs of Braze's answer (an ``httpx.Response`` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Refusal:
    """Braze refused the request (429): the group is blocked for ``wait`` seconds."""

    wait: float
    retry_at: float  # epoch seconds


class Slot:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        group: str,
        lane: Lane,
        max_wait: float,
        share: float | None,
    ) -> None:
        self._limiter = limiter
        self.group = group
        self.lane = lane
        self._max_wait = max_wait
        self._share = share
        self._permit: Permit | None = None
        self._answered = False

    @property
    def permit(self) -> Permit:
        if self._permit is None:
            raise RuntimeError("a slot is taken by entering its with block")
        return self._permit

    @property
    def waited(self) -> float:
        return self.permit.waited

    def __enter__(self) -> Slot:
        self._permit = self._limiter.acquire(
            group=self.group, lane=self.lane, max_wait=self._max_wait, share=self._share
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        probe = self._permit.probe if self._permit is not None else None
        if probe and not self._answered:
            # No answer, so nothing was learnt about Braze's window: the next caller probes.
            self._limiter.probe_release(group=self.group, token=probe)

    def answer(self, response: Answer) -> Refusal | None:
        """Tell the limiter Braze's answer; a Refusal when it was a 429."""
        permit = self.permit
        if self._answered:
            raise RuntimeError("a slot takes one answer")
        self._answered = True
        headers = response.headers
        now = time.time()
        reset_at = parse_rate_limit_reset(headers.get("x-ratelimit-reset"), now=now)
        # Braze documents X-RateLimit-Limit, -Remaining and -Reset on every answer, 429s
        # included: the limit in effect for the workspace, and others' use of it. Without
        # them the answer is a proxy's page, or a 401 (which belongs to no workspace).
        told = "x-ratelimit-limit" in headers or "x-ratelimit-remaining" in headers
        if told and not permit.probe and response.status_code != 429:
            # The common answer: what it says and its reset, learnt in one round trip.
            self._limiter.answered(
                group=self.group,
                permit=permit,
                limit=headers.get("x-ratelimit-limit"),
                remaining=headers.get("x-ratelimit-remaining"),
                reset_at=reset_at,
                reset=headers.get("x-ratelimit-reset"),
            )
            self._block_if_spent(headers, now=now, reset_at=reset_at)
            return None
        if told:
            self._limiter.learn(
                group=self.group,
                permit=permit,
                limit=headers.get("x-ratelimit-limit"),
                remaining=headers.get("x-ratelimit-remaining"),
                reset_at=reset_at,
            )
        if response.status_code == 429:
            wait = self._refusal_wait(headers, now=now, reset_at=reset_at)
            retry_at = self._limiter.block(
                group=self.group, seconds=wait, keep_grid=bool(permit.probe)
            )
            if permit.probe:
                self._limiter.probe_settle(group=self.group, token=permit.probe)
            return Refusal(wait=wait, retry_at=retry_at or now + wait)
        if permit.probe:
            self._settle_probe(permit.probe, headers, reset_at=reset_at)
        self._limiter.observe(
            group=self.group, permit=permit, reset=headers.get("x-ratelimit-reset")
        )
        self._block_if_spent(headers, now=now, reset_at=reset_at)
        return None

    def _block_if_spent(
        self, headers: Mapping[str, str], *, now: float, reset_at: float | None
    ) -> None:
        """Braze says nothing is left in its window: block the group until the reset, when
        our own log still has room (block's ``only_if_room``)."""
        if headers.get("x-ratelimit-remaining") == "0" and reset_at is not None:
            wait = reset_at - now
            if wait > 0:
                self._limiter.block(
                    group=self.group,
                    seconds=min(wait, max(self._limiter.limits.window(self.group), 1.0)),
                    only_if_room=True,
                )

    def _settle_probe(
        self, token: str, headers: Mapping[str, str], *, reset_at: float | None
    ) -> None:
        """End the group's cold start with the probe's answer (README "Cold start").

        An answer without usable rate-limit headers (a proxy's error page; a 401, which
        belongs to no workspace) ends it too: probing again would learn no more, and the
        group then runs on our own log as it always did before.
        """
        try:
            used = max(0, int(headers["x-ratelimit-limit"]) - int(headers["x-ratelimit-remaining"]))
        except (KeyError, ValueError):
            self._limiter.probe_settle(group=self.group, token=token)
            return
        self._limiter.probe_settle(group=self.group, token=token, used=used, reset_at=reset_at)

    def _refusal_wait(
        self, headers: Mapping[str, str], *, now: float, reset_at: float | None
    ) -> float:
        # Braze documents no Retry-After on REST 429s: X-RateLimit-Reset says when the window
        # resets (UTC epoch seconds). A Retry-After, where one is sent, is honoured first.
        # Reference: "API Rate Limits", "Monitoring your rate limits" (_docs/_api/api_limits.md).
        window = self._limiter.limits.window(self.group)
        wait = parse_retry_after(headers.get("retry-after"), now=now)
        if wait is None and reset_at is not None:
            wait = max(0.0, reset_at - now)
        if wait is None:
            wait = min(60.0, window)
        # Never trust a reset further away than one window, nor wait for nothing.
        return min(max(wait, 0.05), max(window, 1.0))
