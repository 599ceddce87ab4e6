"""The state machines of a bulk job, and the one function per machine that moves each.

A table per machine lists the moves it allows (from → to). A state changes only through its
function: it refuses a move the table does not list (``InvalidTransition``: a defect in the
caller), and writes compare-and-set (``WHERE state IN (from…)``), so a row another worker
moved meanwhile is left alone and the caller is told (False, or the rows moved). A job or
read-back move also appends the audit entry, in the caller's transaction, when it names one.

* job (``BulkJob.state``): read the file, review, send, end;
* batch (``BulkBatch.state``): one request to Braze and what it came to;
* row (``BulkRow.outcome``): what happened to one item;
* read-back (``BulkJob.readback_state``) and its samples (``BulkReadBack.outcome``).

Creating a row in its first state (a job parsing, a batch pending, a row pending or skipped,
a sample pending) is not a move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import QuerySet

from catalog_bulk.models import (
    BatchState,
    BulkBatch,
    BulkJob,
    BulkReadBack,
    BulkRow,
    JobState,
    ReadBackOutcome,
    ReadBackState,
    RowOutcome,
)
from console.audit.services import Actor, SystemActor, audit_append

BULK_RESOURCE = "catalog_bulk"
PIPELINE_ACTOR = SystemActor("catalog-bulk")

type Moves = Mapping[str, frozenset[str]]

_J = JobState
JOB_MOVES: Moves = {
    _J.PARSING: frozenset({_J.INVALID, _J.READY, _J.CANCELLED}),
    _J.INVALID: frozenset({_J.CANCELLED}),
    # Approved without passing through review when no change request was needed.
    _J.READY: frozenset({_J.REVIEW, _J.WAITING, _J.RUNNING, _J.CANCELLED}),
    _J.REVIEW: frozenset({_J.WAITING, _J.RUNNING, _J.CANCELLED}),
    _J.WAITING: frozenset({_J.RUNNING, _J.PAUSED, _J.CANCELLED}),
    # Running to running: its failed batches are sent again while others still go.
    _J.RUNNING: frozenset({_J.RUNNING, _J.PAUSED, _J.DONE, _J.CANCELLED}),
    _J.PAUSED: frozenset({_J.WAITING, _J.RUNNING, _J.DONE, _J.CANCELLED}),
    _J.DONE: frozenset({_J.RUNNING}),  # its failed batches sent again
    _J.CANCELLED: frozenset(),
}

_B = BatchState
# What an answer (or its absence) makes of a batch that was sent: "not sent after all"
# puts it back where it was (pending, waiting to retry, in doubt).
_ANSWERED = frozenset(
    {_B.ACCEPTED, _B.REJECTED, _B.SPLIT, _B.FAILED, _B.RETRY_WAIT, _B.IN_DOUBT, _B.PENDING}
)
BATCH_MOVES: Moves = {
    _B.PENDING: frozenset({_B.IN_FLIGHT, _B.CANCELLED}),
    _B.RETRY_WAIT: frozenset({_B.IN_FLIGHT, _B.CANCELLED}),
    # The sweeper gave up waiting for an answer that may still come: either may move it.
    _B.IN_DOUBT: frozenset({_B.IN_FLIGHT, _B.CANCELLED, *_ANSWERED}),
    _B.IN_FLIGHT: _ANSWERED,
    _B.FAILED: frozenset({_B.IN_DOUBT}),  # a person sends it again
    _B.ACCEPTED: frozenset(),
    _B.REJECTED: frozenset(),
    _B.SPLIT: frozenset(),
    _B.CANCELLED: frozenset(),
}

_O = RowOutcome
ROW_MOVES: Moves = {
    _O.PENDING: frozenset({_O.ACCEPTED, _O.REJECTED, _O.FAILED, _O.CANCELLED}),
    _O.FAILED: frozenset({_O.PENDING}),  # its batch is sent again
    _O.ACCEPTED: frozenset(),
    _O.REJECTED: frozenset(),
    _O.CANCELLED: frozenset(),
    _O.SKIPPED: frozenset(),
}

_R = ReadBackState
# A job finished again (after its failed batches were sent again) plans its read-back anew.
_PLANNED = frozenset({_R.NONE, _R.SCHEDULED})
READBACK_MOVES: Moves = {
    _R.NONE: _PLANNED,
    _R.SCHEDULED: frozenset({*_PLANNED, _R.READING}),
    # Reading to reading: a worker takes over a step whose lease ran out.
    _R.READING: frozenset({*_PLANNED, _R.READING, _R.DONE, _R.FAILED}),
    _R.DONE: _PLANNED,
    _R.FAILED: _PLANNED,
}

_S = ReadBackOutcome
SAMPLE_MOVES: Moves = {
    _S.PENDING: frozenset({_S.MATCH, _S.MISMATCH, _S.ERROR}),
    _S.MATCH: frozenset(),
    _S.MISMATCH: frozenset(),
    _S.ERROR: frozenset(),
}


class InvalidTransition(Exception):
    """A move its machine's table does not allow: the caller is wrong, nothing was written."""


def _sources(machine: str, moves: Moves, to: str, from_: Iterable[str] | None) -> list[str]:
    """The states a move to `to` may start from: those given, or every one the table allows."""
    if from_ is None:
        return [state for state, targets in moves.items() if to in targets]
    sources = list(dict.fromkeys(from_))
    refused = [state for state in sources if to not in moves[state]]
    if refused:
        raise InvalidTransition(f"{machine}: {refused[0]} → {to} is not a move it makes")
    return sources


def job_identifier(job: BulkJob) -> str:
    return f"{job.catalog.name}/bulk-{job.pk}"


def bulk_job_audit(
    *, actor: Actor, job: BulkJob, action: str, data: dict[str, Any] | None = None
) -> None:
    """Record a step of the job in the audit trail, in the caller's transaction."""
    audit_append(
        actor=actor,
        action=action,
        resource_type=BULK_RESOURCE,
        resource_id=job_identifier(job),
        change_request_id=job.change_request_id,
        data={
            "job": job.pk,
            "catalog": job.catalog.name,
            "operation": job.operation,
            **(data or {}),
        },
    )


def _job_field_move(
    job: BulkJob,
    field: str,
    moves: Moves,
    to: str,
    from_: Iterable[str] | None,
    audit: tuple[Actor, str, dict[str, Any] | None] | None,
    fields: dict[str, Any],
) -> bool:
    sources = _sources(f"bulk job {job.pk} {field}", moves, to, from_)
    moved = BulkJob.objects.filter(pk=job.pk, **{f"{field}__in": sources}).update(
        **{field: to}, **fields
    )
    if not moved:
        return False
    setattr(job, field, to)
    for name, value in fields.items():
        setattr(job, name, value)
    if audit is not None:
        actor, action, data = audit
        bulk_job_audit(actor=actor, job=job, action=action, data=data)
    return True


def job_move(
    job: BulkJob,
    to: JobState,
    *,
    from_: Iterable[str] | None = None,
    actor: Actor | None = None,
    action: str = "",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move the job to `to` from `from_` (default: the state the instance holds), writing
    `fields` with it; audit `action` by `actor` if it moved. False: the row had moved on."""
    if from_ is None:
        from_ = (job.state,)
    audit = (actor or PIPELINE_ACTOR, action, data) if action else None
    return _job_field_move(job, "state", JOB_MOVES, to, from_, audit, fields)


def readback_move(
    job: BulkJob,
    to: ReadBackState,
    *,
    from_: Iterable[str] | None = None,
    action: str = "",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """The job's read-back, as `job_move` moves the job (the pipeline is its only actor)."""
    if from_ is None:
        from_ = (job.readback_state,)
    audit = (PIPELINE_ACTOR, action, data) if action else None
    return _job_field_move(job, "readback_state", READBACK_MOVES, to, from_, audit, fields)


def batch_move_sources(to: BatchState, *, from_: Iterable[str] | None = None) -> list[str]:
    """The states a batch may move to `to` from (for set-based SQL that moves many)."""
    return _sources("bulk batch", BATCH_MOVES, to, from_)


def row_move_sources(to: RowOutcome) -> list[str]:
    """The outcomes a row may move to `to` from (for set-based SQL that moves many)."""
    return _sources("bulk row", ROW_MOVES, to, None)


def batches_move(
    batches: QuerySet[BulkBatch],
    to: BatchState,
    *,
    from_: Iterable[str] | None = None,
    **fields: Any,
) -> int:
    """Move the batches that are in `from_` (default: any state the table lets reach `to`);
    returns how many moved."""
    sources = _sources("bulk batch", BATCH_MOVES, to, from_)
    return batches.filter(state__in=sources).update(state=to, **fields)


def rows_move(
    rows: QuerySet[BulkRow], to: RowOutcome, *, from_: Iterable[str] | None = None, **fields: Any
) -> int:
    """Move the rows whose outcome is in `from_` (default: any the table lets reach `to`)."""
    sources = _sources("bulk row", ROW_MOVES, to, from_)
    return rows.filter(outcome__in=sources).update(outcome=to, **fields)


def samples_move(samples: QuerySet[BulkReadBack], to: ReadBackOutcome, **fields: Any) -> int:
    """Record what reading back the samples found (only a sample not read yet moves)."""
    sources = _sources("read-back sample", SAMPLE_MOVES, to, None)
    return samples.filter(outcome__in=sources).update(outcome=to, **fields)
