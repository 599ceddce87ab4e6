"""What apps add to the home page, registered from their ``ready()``: the core imports no app.

Bulk jobs are the one such part today (``catalog_bulk`` registers them); without a
registration the home shows no job parts.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class JobProgress(Protocol):
    @property
    def job(self) -> Any: ...

    @property
    def percent(self) -> int: ...


@dataclass(frozen=True)
class JobSource:
    # The person's jobs not yet over, newest first, at most `limit`.
    open_of: Callable[..., Sequence[JobProgress]]
    # Jobs stopped part way until someone resumes them, at most `limit`.
    paused: Callable[..., Sequence[JobProgress]]


_jobs: JobSource | None = None


def home_jobs_register(source: JobSource) -> None:
    global _jobs
    _jobs = source


def home_jobs_open_of(*, user: Any, limit: int) -> Sequence[JobProgress]:
    return _jobs.open_of(user=user, limit=limit) if _jobs else []


def home_jobs_paused(*, limit: int) -> Sequence[JobProgress]:
    return _jobs.paused(limit=limit) if _jobs else []
