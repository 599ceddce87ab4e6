"""A slot taken from the limiter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Permit:
    """A slot taken: how long the caller waited, and whether it is the cold-start probe."""

    waited: float
    # The probe's token: its caller must settle (or release) the probe with the answer.
    probe: str | None = None
    # Redis time of the slot (µs), for checking the answer against a learnt grid.
    at_us: int = 0
    # Taken in the background lane: its answer settles background work's log too.
    background: bool = False
