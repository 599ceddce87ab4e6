"""The Redis keys of one limit group, named once: the scripts receive them by these names."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class GroupKeys:
    log: str  # every send of ours in the last window (a sorted set of Redis times)
    bg: str  # background work's sends only
    blocked: str  # until when Braze said the group is full
    learnt: str  # the limit Braze last announced (X-RateLimit-Limit)
    alive: str  # set once the cold start is over (no TTL)
    probe: str  # the cold-start probe's token, while it is out
    gather: str  # when the cold start's gathering began
    others: str  # other clients' use as Braze's answers show it
    slot: str  # the last paced background slot off the grid
    steady: str  # when the log's even schedule is next due, off the grid
    grid: str  # the learnt fixed-window grid's phase (grid.py)
    gridobs: str  # the resets seen while learning the grid
    gridoff: str  # set after a 429: do not learn the grid again for a while
    settled_earlier: str  # guard sends Braze counted in the earlier of their two windows
    settled_later: str  # ... and in the later one

    @classmethod
    def of(cls, *, prefix: str, workspace: str, group: str) -> GroupKeys:
        base = f"{prefix}:{workspace}:{group}"
        names = {f.name: f.name for f in fields(cls)}
        names.update(
            learnt="learned", settled_earlier="settled:earlier", settled_later="settled:later"
        )
        return cls(**{name: f"{base}:{part}" for name, part in names.items()})

    def pick(self, *names: str) -> dict[str, str]:
        """The named keys, in that order, for a script call."""
        return {name: getattr(self, name) for name in names}

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]
