"""Writes of bulk item jobs: upload, parse and preview, proposal, start, pause, cancel, finish.

A job is a change request (action "bulk"). Approving it does not send anything inline: the
applier (catalog_bulk/appliers.py) cuts the plan into batches of at most 50 items and
starts the senders (senders.py). States change only through states.py.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import logging
import time
import uuid
from _json import make_encoder
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import batched, islice
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.files import File
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from catalog_bulk import parsing, preview, validation
from catalog_bulk.models import (
    ACTIVE_JOB_STATES,
    CLAIMABLE_STATES,
    ITEM_FIELD,
    SENT_OPS,
    BatchState,
    BulkBatch,
    BulkJob,
    BulkOperation,
    BulkRow,
    JobState,
    RowOp,
    RowOutcome,
)
from catalog_bulk.outbox import batch_totals, batches_expire
from catalog_bulk.readback import readback_sweep
from catalog_bulk.senders import bulk_job_finish_if_done, senders_kick
from catalog_bulk.states import (
    BULK_RESOURCE,
    PIPELINE_ACTOR,
    batches_move,
    bulk_job_audit,
    job_identifier,
    job_move,
    rows_move,
)
from catalog_bulk.uploads import too_large_message
from catalogs import rules
from catalogs.models import Catalog, CatalogItem
from console.audit import events
from console.audit.hashing import canonical_json, canonical_json_decoded, json_scan
from console.audit.services import Actor
from console.braze.errors import STORAGE_LIMIT_IDS
from console.celery import task_enqueue
from console.changes.appliers import ApplyRefused
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import (
    CANCELLABLE,
    ChangeRequestError,
    change_request_cancel,
    change_request_propose,
)
from console.changes.services import InvalidTransition as ChangeRequestInvalidTransition
from console.spreadsheet import cell_restored
from console.workspaces import workspace_active

logger = logging.getLogger(__name__)

CHUNK_ROWS = 1000
# Rows checked and stored per round trip while a file is read: a few MB of rows at most.
PARSE_CHUNK_ROWS = 5000
# Queued by name (console.celery.task_enqueue): the tasks module imports this one. The name
# is the one the task had in catalogs/bulk/, which queued messages still carry.
PARSE_TASK = "catalogs.bulk.tasks.bulk_parse_task"
_PARSE_LOCK_CLASS = 0x42554C4B  # "BULK"; the second key is the job id
_CATALOG_LOCK_CLASS = 0x42554C43  # "BULC"; the second key is the catalog id
# Batches go out creates first, deletes last (order between items of one job is free:
# an id appears once per file).
_SEND_ORDER = [RowOp.CREATE, RowOp.REPLACE, RowOp.UPDATE, RowOp.DELETE]


class BulkError(ApplyRefused):
    """A refused operation; the message is shown to the user as is (also when the apply
    step of a change request raises it)."""


# --- upload and parse -----------------------------------------------------------------------


def upload_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "bulk"


def bulk_job_upload(
    *, actor: AbstractBaseUser, catalog: Catalog, operation: str, upload: File[bytes]
) -> BulkJob:
    """Stream the upload to disk (never whole into memory) and queue its parsing."""
    size = upload.size or 0
    if size > settings.BULK_MAX_UPLOAD_BYTES:
        raise BulkError(too_large_message())
    if size == 0:
        raise BulkError("The file is empty.")
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.upload"
    head = b""
    written = 0
    with path.open("wb") as out:
        for chunk in upload.chunks():
            if not head:
                head = chunk[:4096]
            written += len(chunk)
            if written > settings.BULK_MAX_UPLOAD_BYTES:  # a size that was not the truth
                out.close()
                path.unlink(missing_ok=True)
                raise BulkError(too_large_message())
            out.write(chunk)
    file_name = (upload.name or "upload")[:255]
    with transaction.atomic(durable=True):
        job = BulkJob.objects.create(
            workspace=catalog.workspace,
            catalog=catalog,
            operation=BulkOperation(operation),
            file_name=file_name,
            file_path=str(path),
            file_size=size,
            file_format=parsing.detect_format(file_name, head),
            created_by_id=actor.pk,
        )
        bulk_job_audit(
            actor=actor,
            job=job,
            action=events.CATALOG_BULK_UPLOADED,
            data={"file_name": file_name, "bytes": size},
        )
        job_id = job.pk
        # robust: a message lost while the broker is down must not fail the upload; the sweeper
        # queues the parse again (bulk_jobs_parse_requeue).
        transaction.on_commit(
            lambda: task_enqueue(PARSE_TASK, job_id, catalog.workspace), robust=True
        )
    return job


def bulk_job_copy_items(*, actor: AbstractBaseUser, source: Catalog, target: Catalog) -> BulkJob:
    """An upsert job in ``target``'s workspace carrying every item ``source``'s mirror holds:
    a catalog's items go from one workspace to another through the bulk pipeline (checked row
    by row against the target's fields, previewed, approved there, sent at its limits)."""
    if source.workspace == target.workspace or source.name != target.name:
        raise BulkError("Items are copied to the catalog of the same name in another workspace.")
    if not CatalogItem.objects.filter(catalog=source).exists():
        raise BulkError(f"{source.name} has no items in this workspace's mirror to copy.")
    directory = upload_dir()
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f"{uuid.uuid4().hex}.copy"
    try:
        with staging.open("wb") as out:
            items = CatalogItem.objects.filter(catalog=source).order_by("item_id")
            for item in items.iterator(chunk_size=2000):
                line = _encode({"id": item.item_id, **item.data}) + "\n"
                out.write(line.encode())
        with staging.open("rb") as handle:
            name = f"{source.name}-from-{source.workspace}.jsonl"
            return bulk_job_upload(
                actor=actor,
                catalog=target,
                operation=BulkOperation.UPSERT,
                upload=File(handle, name),
            )
    finally:
        staging.unlink(missing_ok=True)


_COPY_SQL = (
    "COPY catalogs_bulkrow (job_id, line, item_id, op, payload, before, errors, raw, outcome, "
    "sends, resends, outcome_error) FROM STDIN"
)


# One encoder: json.dumps with any option builds a new one per call, a third of the JSON
# cost of a parse that encodes four values a row.
_encoder = json.JSONEncoder(ensure_ascii=False)
_encode = _encoder.encode
# The C encoder behind _encode, made once: encode() makes a new one on every call, about 40%
# of the cost of a row's small value. It has no circularity check, so it is only for values
# decoded from JSON (the mirror's items) or built from a row's cells and errors.
_c_encode = make_encoder(
    None, _encoder.default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
)


def _encode_acyclic(value: Any) -> str:
    """`_encode` of a value that cannot contain itself."""
    if isinstance(value, str):
        return _encode(value)
    return "".join(_c_encode(value, 0))


def _scanned(data: Any) -> Any:
    # psycopg returns jsonb decoded unless Django's connection registered text loaders;
    # PostgreSQL's text of a jsonb is one value and nothing else, so no loads() checks.
    return json_scan(data)[0] if isinstance(data, str) else data


def _json(value: Any) -> str | None:
    return None if value is None else _encode(value)


_NO_ERRORS = "[]"
_COULD_NOT_CHECK = "This row could not be checked; correct its values or leave it out."

# A row while its chunk is checked: (line, item id, typed values, errors, the row as given:
# a dict, or a CSV record's cells made into one only if the row is an error row).
type _Row = tuple[int, str, dict[str, Any], list[str], dict[str, Any] | list[str]]


def _duplicate(item_id: str, first: int) -> str:
    return f"The id “{item_id}” is already on line {first} of this file (ids-not-unique)."


class _ChunkPlanner:
    """Checks and de-duplicates rows in chunks, keeping counts; a subclass diffs each chunk
    against the mirror and stores it (``_PipelinedPlanner``; the row-at-a-time reference it
    is tested against is in tests/catalog_bulk/reference_planner.py)."""

    def __init__(self, job: BulkJob) -> None:
        self.job = job
        self.catalog = job.catalog
        self.types = job.catalog.field_types()
        self.counts: Counter[str] = Counter()
        self.digest = hashlib.sha256()
        self.seen: set[int] = set()
        self.chunk: list[_Row] = []
        self.chunk_lines: dict[str, int] = {}
        self.checker: validation.CsvRowChecker | None = None
        self.rows_read = 0
        self.rows_with_values = 0
        # Read once: settings are a lazy object, and these are asked for every row.
        self.unknown_named = settings.BULK_UNKNOWN_COLUMNS_NAMED
        self.error_rows_with_values = settings.BULK_ERROR_ROWS_WITH_VALUES

    def _kept(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values an error row keeps for errors.csv: the id, the catalog's fields and the
        first few other keys (a row of a million made-up keys must not be kept whole)."""
        extra = self.unknown_named
        kept: dict[str, Any] = {}
        for name, value in values.items():
            if name == "id" or name in self.types:
                kept[name] = value
            elif extra > 0:
                kept[name] = value
                extra -= 1
        return kept

    def add(self, raw: parsing.RawRow, *, from_csv: bool) -> None:
        """One row as a dict (JSON Lines, or ``parsing.read_csv``'s row at a time)."""
        if raw.error:
            item_id, values, errors = str(raw.values.get("id", ""))[:300], {}, [raw.error]
        else:
            try:
                checked = validation.check_row(
                    values=raw.values,
                    types=self.types,
                    operation=self.job.operation,
                    from_csv=from_csv,
                )
                item_id, values, errors = checked.item_id, checked.values, checked.errors
            except Exception:  # one row must never stop the file (nor leave it unread)
                logger.exception("bulk job %s: line %s could not be checked", self.job.pk, raw.line)
                given = raw.values.get("id")
                item_id = given[:300] if isinstance(given, str) else ""
                values, errors = {}, [_COULD_NOT_CHECK]
        self._take(raw.line, item_id, values, errors, raw.values)

    def add_cells(
        self, checker: validation.CsvRowChecker, line: int, cells: list[str], error: str
    ) -> None:
        """One CSV record as read (``parsing.read_csv_cells``): no dict unless it has errors."""
        self.checker = checker
        if error:
            given = cell_restored(cells[0].strip())
            self._take(line, given[:300], {}, [error], {"id": given})
            return
        try:
            item_id, values, errors = checker.check(cells)
        except Exception:  # one row must never stop the file (nor leave it unread)
            logger.exception("bulk job %s: line %s could not be checked", self.job.pk, line)
            item_id = cell_restored(cells[checker.id_index])[:300]
            values, errors = {}, [_COULD_NOT_CHECK]
        self._take(line, item_id, values, errors, cells)

    def _take(
        self,
        line: int,
        item_id: str,
        values: dict[str, Any],
        errors: list[str],
        given: dict[str, Any] | list[str],
    ) -> None:
        self.rows_read += 1
        if item_id:
            # 64-bit hashes keep memory small; a hash hit is confirmed exactly.
            key = hash(item_id)
            if key in self.seen:
                self._seen_again(item_id, errors)
            else:
                self.seen.add(key)
            self.chunk_lines.setdefault(item_id, line)
        self.chunk.append((line, item_id, values, errors, given))
        if len(self.chunk) >= PARSE_CHUNK_ROWS:
            self.flush()

    def expect(self, ids: list[str]) -> None:
        """The ids of the next chunk's rows, read before its rows are added."""

    def _seen_again(self, item_id: str, errors: list[str]) -> None:
        """A row whose id hashes like an earlier one's: an error if it is the same id."""
        raise NotImplementedError

    def flush(self) -> None:
        """Store the chunk's rows and count them."""
        raise NotImplementedError

    def finish(self) -> None:
        """Store what is left once the file has been read."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the planner holds, also when the file was not read to the end."""
        raise NotImplementedError


# COPY's text format: these four characters are escaped in a value; JSON text (ensure_ascii
# off) writes control characters as escapes, so only its backslashes need doubling.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_FIRST_LINES_SQL = (
    "SELECT item_id, min(line) FROM catalogs_bulkrow"
    " WHERE job_id = %s AND item_id = ANY(%s) GROUP BY item_id"
)
_MIRROR_SQL = (
    f"SELECT item_id, data FROM {CatalogItem._meta.db_table}"  # noqa: S608
    " WHERE catalog_id = %s AND item_id = ANY(string_to_array(%s, ','))"
)
# Rows encoded per piece handed to the writer: the COPY starts while the chunk is encoded.
_PIECE_ROWS = 500


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES) if _needs_escape(value) else value


def _needs_escape(value: str) -> bool:
    return "\\" in value or "\t" in value or "\n" in value or "\r" in value


def _copy_json(value: str) -> str:
    return value.replace("\\", "\\\\") if "\\" in value else value


class _WriterFailed(Exception):
    """An earlier step on the writer thread failed; later ones are not run."""


class _PipelinedPlanner(_ChunkPlanner):
    """The parse's planner: chunk k is stored while chunk k+1 is read and checked.

    On two cores the console's Python and PostgreSQL then work at the same time instead of
    in turn. One writer thread does every database step of the parse, in order, on the job's
    own connection (so the rows are in the caller's transaction, as the reference's are):
    a chunk's lookups (the mirror's items, and the first line of ids seen in earlier
    chunks), then its COPY, which takes the rows as they are encoded. The main thread does
    not use the connection until ``finish`` or ``close`` has waited for the writer.

    Stored rows, counts and the plan hash are the row-at-a-time reference's (tests/catalog_bulk/
    test_csv_checker.py). An id seen in an earlier chunk is looked up with the chunk's
    mirror lookup, after the earlier chunks' COPY, where the reference asks at once.
    """

    def __init__(self, job: BulkJob) -> None:
        super().__init__(job)
        connection.ensure_connection()
        self.db = connection.connection
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-parse")
        self.copies: list[Future[None]] = []
        self.expected: Future[dict[str, Any]] | None = None
        self.expected_rows = 0
        self.failure: BaseException | None = None
        # Rows of this chunk whose id an earlier chunk may hold: (id, the row's errors).
        self.unresolved: list[tuple[str, list[str]]] = []

    def _seen_again(self, item_id: str, errors: list[str]) -> None:
        if item_id in self.chunk_lines:
            errors.append(_duplicate(item_id, self.chunk_lines[item_id]))
        else:
            self.unresolved.append((item_id, errors))

    def _on_writer[**P, R](self, step: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        # Runs on the writer thread: after a failed step the later ones would act on a
        # connection in an unknown state (a COPY half done, a transaction aborted).
        if self.failure is not None:
            raise _WriterFailed from self.failure
        try:
            return step(*args, **kwargs)
        except BaseException as exc:
            self.failure = exc
            raise

    def _result[R](self, future: Future[R]) -> R:
        # psycopg's exceptions as Django's: _parse tells a lost database (raised again, the
        # job read later) from a file it cannot read by them.
        with connection.wrap_database_errors:
            try:
                return future.result()
            except _WriterFailed as exc:
                # The step that failed first says why, not the ones skipped after it.
                cause = exc.__cause__
                if cause is None:
                    raise
                raise cause from None

    def expect(self, ids: list[str]) -> None:
        """The ids of the next chunk's rows, before they are added: the mirror's items are
        looked up while they are checked. Any id may be given (only a valid row's is looked
        for in the result); without this call ``flush`` looks them up itself."""
        self.expected = self.writer.submit(self._on_writer, self._mirror, ",".join(ids))
        self.expected_rows = len(ids)

    def _mirror(self, ids: str) -> dict[str, Any]:
        with self.db.cursor() as cursor:
            cursor.execute(_MIRROR_SQL, [self.catalog.pk, ids])
            return {item_id: _scanned(data) for item_id, data in cursor.fetchall()}

    def _first_lines(self, ids: list[str]) -> dict[str, int]:
        with self.db.cursor() as cursor:
            cursor.execute(_FIRST_LINES_SQL, [self.job.pk, ids])
            return dict(cursor.fetchall())

    def _copy(self, pieces: SimpleQueue[bytes | None], rows_read: int) -> None:
        # Pieces end with None, or with b"" when the chunk could not be encoded to the end:
        # then the COPY is abandoned (its rows are not stored), as the reference stores none.
        piece: bytes | None = b"-"
        try:
            # Like the reference's atomic block: a transaction of its own, or a savepoint in
            # the caller's, so a failed COPY leaves the connection usable.
            with self.db.transaction(), self.db.cursor() as cursor:
                with cursor.copy(_COPY_SQL) as copy:
                    while piece := pieces.get():
                        copy.write(piece)
                    if piece is not None:
                        raise _WriterFailed("the chunk was not encoded to the end")
                cursor.execute(
                    f"UPDATE {BulkJob._meta.db_table} SET rows_read = %s WHERE id = %s",  # noqa: S608
                    [rows_read, self.job.pk],
                )
        except BaseException:
            # The main thread may still be handing over the chunk: take it, so it never waits.
            while piece:
                piece = pieces.get()
            raise

    def flush(self) -> None:
        if not self.chunk:
            return
        chunk, unresolved = self.chunk, self.unresolved
        self.chunk, self.chunk_lines, self.unresolved = [], {}, []
        mirror_items = self.expected
        self.expected = None
        if mirror_items is None or len(chunk) != self.expected_rows:
            # Valid ids have no commas (letters, digits, - and _); a row found a duplicate
            # below only makes the lookup ask for one item more.
            ids = ",".join([row[1] for row in chunk if not row[3]])
            mirror_items = self.writer.submit(self._on_writer, self._mirror, ids)
        if unresolved:
            again = list(dict.fromkeys(item_id for item_id, _ in unresolved))
            first = self._result(self.writer.submit(self._on_writer, self._first_lines, again))
            for item_id, errors in unresolved:
                if item_id in first:
                    errors.append(_duplicate(item_id, first[item_id]))
        mirror = self._result(mirror_items)
        for done in [c for c in self.copies if c.done()]:
            self._result(done)
            self.copies.remove(done)
        pieces: SimpleQueue[bytes | None] = SimpleQueue()
        self.copies.append(self.writer.submit(self._on_writer, self._copy, pieces, self.rows_read))
        try:
            self._encode(chunk, mirror, pieces)
        except BaseException:
            pieces.put(b"")
            raise
        pieces.put(None)

    def _encode(
        self, chunk: list[_Row], mirror: dict[str, Any], pieces: SimpleQueue[bytes | None]
    ) -> None:
        """The chunk's rows planned against the mirror, as COPY text, to the writer."""
        head = f"{self.job.pk}\t"
        operation, types = self.job.operation, self.types
        counts, digest = self.counts, self.digest
        plan_row, sent_ops = preview.plan_row, SENT_OPS
        lines: list[str] = []
        op: str
        for line, item_id, values, errors, given in chunk:
            kept = "\\N"
            if errors:
                op, kind, payload, before = RowOp.ERROR, "error", None, "\\N"
            else:
                planned = plan_row(
                    operation=operation, values=values, current=mirror.get(item_id), types=types
                )
                op, kind = planned.op, planned.kind
                sent = planned.payload
                # The payload is built from the row's cells and the mirror's item: acyclic.
                payload = None if sent is None else canonical_json_decoded(sent)
                before = (
                    "\\N" if planned.before is None else _copy_json(_encode_acyclic(planned.before))
                )
                if planned.error:
                    errors = [planned.error]
            counts[kind] += 1
            if op in sent_ops:
                digest.update(f'[{line},"{op}","{item_id}",{payload or "null"}]'.encode())
                outcome = RowOutcome.PENDING
            else:
                outcome = RowOutcome.SKIPPED
            if errors:
                if self.rows_with_values < self.error_rows_with_values:
                    self.rows_with_values += 1
                    if not isinstance(given, dict):
                        assert self.checker is not None  # cells come with their checker
                        given = self.checker.values(given)
                    kept = _copy_json(_encode_acyclic(self._kept(given)))
                reasons = _copy_json(_encode_acyclic(errors))
            else:
                reasons = _NO_ERRORS
            lines.append(
                f"{head}{line}\t{_copy_text(item_id)}\t{op}\t"
                f"{'\\N' if payload is None else _copy_json(payload)}\t{before}\t{reasons}\t"
                f"{kept}\t{outcome}\t0\t0\t\n"
            )
            if len(lines) >= _PIECE_ROWS:
                pieces.put("".join(lines).encode())
                lines = []
        if lines:
            pieces.put("".join(lines).encode())

    def finish(self) -> None:
        self.flush()
        self.writer.shutdown(wait=True)
        for copy in self.copies:
            self._result(copy)
        self.copies = []

    def close(self) -> None:
        # Every COPY has its end (flush puts it, also on failure), so this cannot hang.
        self.writer.shutdown(wait=True)


def bulk_job_parse(*, job_id: int) -> BulkJob:
    """Read, check and diff the uploaded file against the mirror (run by a worker).

    Safe to run again after a crash: it starts over from the file.
    """
    job = BulkJob.objects.select_related("catalog").get(pk=job_id)
    if job.state != JobState.PARSING:
        return job
    if job.workspace != workspace_active().key:
        # Queued for another workspace (a message from before tasks named theirs): parsed
        # there, it would be diffed against a same-named catalog's mirror. The sweeper
        # queues it again in its own workspace.
        logger.warning("bulk job %s (workspace %s) not parsed here", job.pk, job.workspace)
        return job
    # A redelivered task must not parse beside a running one (rows would be stored twice);
    # a session lock ends with its worker, so a killed parse can be started again.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_PARSE_LOCK_CLASS, job.pk])
        if not cursor.fetchone()[0]:
            return job
    try:
        job.refresh_from_db()
        if job.state != JobState.PARSING:
            return job
        return _parse(job)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_PARSE_LOCK_CLASS, job.pk])


def _plan_csv(planner: _ChunkPlanner, path: Path, header: list[str]) -> None:
    """The CSV file's records, checked by one checker prepared from the header. Its verdicts
    are those of ``parsing.read_csv`` and ``validation.check_row``, a row at a time."""
    checker = validation.CsvRowChecker(
        header=header, types=planner.types, operation=planner.job.operation
    )
    records = parsing.read_csv_cells(path)
    # A chunk's records are read first, so the mirror's items for their ids are looked up
    # while they are checked; each record is one row, so the planner's chunks are these.
    while chunk := list(islice(records, PARSE_CHUNK_ROWS)):
        planner.expect([checker.item_id(cells) for _, cells, _ in chunk])
        for line, cells, error in chunk:
            planner.add_cells(checker, line, cells, error)


def _parse(job: BulkJob) -> BulkJob:
    started = time.monotonic()
    BulkRow.objects.filter(job=job).delete()
    path = Path(job.file_path)
    planner = _PipelinedPlanner(job)
    columns: list[str] = []
    file_errors: list[str] = []
    try:
        if job.file_format == "csv":
            columns = parsing.read_csv_header(path)
            file_errors = parsing.csv_header_errors(columns)
            if not file_errors:
                _plan_csv(planner, path, columns)
        else:
            for raw in parsing.read_jsonl(path):
                planner.add(raw, from_csv=False)
        planner.finish()
    except parsing.FileRefused as exc:
        file_errors = [str(exc)]
    except FileNotFoundError:
        file_errors = ["The uploaded file is no longer on the server; upload it again."]
    except (OperationalError, InterfaceError):
        raise  # the database went away: the job stays to be read again (bulk_sweep)
    except Exception:
        # Anything else would leave the job "reading" for ever with its file on disk.
        logger.exception("bulk job %s: the file could not be read", job.pk)
        file_errors = [
            "The file could not be read to the end (something in it the console does not "
            "expect); nothing was imported. Check it is a CSV or JSON Lines file of items."
        ]
    finally:
        planner.close()
    counts = planner.counts
    if not file_errors and planner.rows_read == 0:
        file_errors = ["The file has no item rows."]
    if file_errors:
        BulkRow.objects.filter(job=job).delete()
    job_move(
        job,
        JobState.INVALID if file_errors else JobState.READY,
        from_=(JobState.PARSING,),
        columns=columns,
        field_types=planner.types,
        file_errors=file_errors,
        rows_read=planner.rows_read,
        n_create=counts["create"],
        n_update=counts["update"],
        n_unchanged=counts["unchanged"],
        n_delete=counts["delete"],
        n_error=counts["error"],
        plan_hash=planner.digest.hexdigest(),
        parse_seconds=time.monotonic() - started,
        parsed_at=timezone.now(),
    )
    path.unlink(missing_ok=True)
    job.refresh_from_db()
    return job


def bulk_jobs_parse_requeue(*, now: datetime | None = None) -> int:
    """Parses that have not finished: queue them again, or give up on them.

    A parse message lost while the broker was down, or a worker killed mid-file, leaves a job
    "reading". After BULK_PARSE_STALE_SECONDS it is queued again (a parse still running holds
    its lock, so the extra task returns at once); after BULK_PARSE_GIVE_UP_SECONDS it is
    refused and its file removed. Returns how many were queued.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.BULK_PARSE_STALE_SECONDS)
    give_up = now - timedelta(seconds=settings.BULK_PARSE_GIVE_UP_SECONDS)
    queued = 0
    workspace = workspace_active().key
    for job_id, created_at in BulkJob.objects.filter(
        workspace=workspace, state=JobState.PARSING, created_at__lt=stale
    ).values_list("pk", "created_at"):
        if created_at < give_up:
            _parse_give_up(job_id)
        elif cache.add(f"bulk:parse-requeued:{job_id}", 1, settings.BULK_PARSE_STALE_SECONDS):
            task_enqueue(PARSE_TASK, job_id, workspace)
            queued += 1
    return queued


def _parse_give_up(job_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_PARSE_LOCK_CLASS, job_id])
        if not cursor.fetchone()[0]:
            return  # still being read
    try:
        job = BulkJob.objects.filter(pk=job_id, state=JobState.PARSING).first()
        if job is None:
            return
        BulkRow.objects.filter(job=job).delete()
        job_move(
            job,
            JobState.INVALID,
            file_errors=["The file could not be read in time; upload it again."],
            parsed_at=timezone.now(),
        )
        Path(job.file_path).unlink(missing_ok=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_PARSE_LOCK_CLASS, job_id])


# --- proposal and start ---------------------------------------------------------------------


def bulk_job_summary(job: BulkJob) -> dict[str, Any]:
    return {
        "job": job.pk,
        "catalog": job.catalog.name,
        "operation": job.operation,
        "file": job.file_name,
        "rows": job.rows_read,
        "create": job.n_create,
        "update": job.n_update,
        "unchanged": job.n_unchanged,
        "delete": job.n_delete,
        "error": job.n_error,
        "plan_hash": job.plan_hash,
    }


def bulk_job_propose(*, actor: AbstractBaseUser, job: BulkJob) -> ChangeRequest:
    """Ask for a Reviewer's approval of exactly this plan (its hash is in the payload)."""
    if job.state != JobState.READY:
        raise BulkError(f"This job is {job.get_state_display().lower()}; it cannot be proposed.")
    if job.items_to_send == 0:
        raise BulkError("Nothing to send: every row is unchanged or has an error.")
    cr = change_request_propose(
        actor=actor,
        resource_type=BULK_RESOURCE,
        identifier=job_identifier(job),
        action="bulk",
        payload=bulk_job_summary(job),
        base_snapshot=None,
        # Reviewed, and applied (its senders started), in the job's own workspace.
        workspace=job.workspace,
        title=(
            f"Bulk {job.operation} of {job.items_to_send:,} items in {job.catalog.name} "
            f"(job #{job.pk})"
        ),
    )
    job_move(job, JobState.REVIEW, from_=(JobState.READY,), change_request=cr)
    job.refresh_from_db()
    return job.change_request or cr


_BATCH_SQL = """
WITH numbered AS (
  SELECT id, op, (row_number() OVER (PARTITION BY op ORDER BY line) - 1) / 50 AS n
  FROM catalogs_bulkrow WHERE job_id = %(job)s AND op = ANY(%(ops)s)
), groups AS (
  SELECT op, n, count(*) AS c,
         row_number() OVER (ORDER BY array_position(%(ops)s, op::text), n) AS seq
  FROM numbered GROUP BY op, n
), inserted AS (
  INSERT INTO catalogs_bulkbatch (job_id, seq, op, send_as, state, item_count, claim_no,
      attempts, resends, retries, rate_limited, error_ids, error_message)
  SELECT %(job)s, seq, op, op, %(pending)s, c, 0, 0, 0, 0, 0, '', '' FROM groups
  RETURNING id, seq
)
UPDATE catalogs_bulkrow r SET batch_id = i.id
FROM numbered nb JOIN groups g ON g.op = nb.op AND g.n = nb.n JOIN inserted i ON i.seq = g.seq
WHERE r.id = nb.id
"""

# One pass over the rows of the jobs concerned, grouped by item: no join, so no plan in which
# the statistics matter. They often do not know a new job's rows yet (autovacuum lags a big
# upload and the run-time role may not ANALYZE); a join planned on them became a nested
# loop over both jobs' rows, which held a job's start for 5 minutes in the two-job
# benchmark (25,000 items each). This form takes about 80 ms on the same rows.
_OVERLAP_SQL = """
SELECT min(job_id) FILTER (WHERE job_id <> %(job)s) FROM catalogs_bulkrow
WHERE job_id = ANY(%(jobs)s) AND op = ANY(%(ops)s)
GROUP BY item_id
HAVING bool_or(job_id = %(job)s) AND bool_or(job_id <> %(job)s)
LIMIT 1
"""


# Jobs that hold their items: sending, or paused and free to send again on resume.
_HOLDING = Q(state__in=(JobState.RUNNING, JobState.PAUSED))
_ACTIVE = Q(state__in=ACTIVE_JOB_STATES)


def _lock_catalog(catalog_id: int, *, wait: bool = True) -> bool:
    """Take the catalog's bulk lock until the transaction ends (False: busy, not waited for).

    Every decision that lets a job send (start, a waiting job's start, resume, sending
    failed batches again) takes it before it looks for an overlapping job: two deciding at
    once would each see the other not started yet, and both send.
    """
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [_CATALOG_LOCK_CLASS, catalog_id])
        row = cursor.fetchone()
    return wait or bool(row and row[0])


def _overlapping_job(job: BulkJob, *, among: Q = _ACTIVE) -> int | None:
    """A job on the same catalog (of those `among` selects) that touches an item of this one.

    Braze does not promise the order in which asynchronous requests are applied, so two
    jobs on the same items must not run at once. Call it under `_lock_catalog`.
    """
    others = list(
        BulkJob.objects.filter(among, catalog_id=job.catalog_id)
        .exclude(pk=job.pk)
        .values_list("pk", flat=True)
    )
    if not others:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            _OVERLAP_SQL, {"jobs": [job.pk, *others], "job": job.pk, "ops": list(SENT_OPS)}
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _catalog_of(job_id: int) -> int:
    catalog_id: int = BulkJob.objects.values_list("catalog_id", flat=True).get(pk=job_id)
    return catalog_id


def _fields_changed_since_preview(job: BulkJob) -> list[str]:
    """What changed in the catalog's fields the job would send since its preview: a field
    deleted (by an approved schema change) or deleted and added again with another type.
    Braze would refuse every item naming one; a field added meanwhile changes nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT jsonb_object_keys(payload) FROM {BulkRow._meta.db_table}"  # noqa: S608
            " WHERE job_id = %s AND jsonb_typeof(payload) = 'object'",
            [job.pk],
        )
        sent = {str(name) for (name,) in cursor.fetchall()} - {"id"}
    now = job.catalog.field_types()
    then: dict[str, str] = job.field_types or {}
    changes = [f"{name} no longer exists" for name in sorted(sent - set(now))]
    changes += [
        f"{name} is now a {now[name]} field, not a {then[name]} one"
        for name in sorted(sent & set(now) & set(then))
        if now[name] != then[name]
    ]
    return changes


def bulk_job_start(*, job_id: int, plan_hash: str, actor: Actor) -> dict[str, Any]:
    """Cut the approved plan into batches and start sending (the applier's apply step)."""
    with transaction.atomic(durable=True):
        _lock_catalog(_catalog_of(job_id))
        job = (
            BulkJob.objects.select_for_update(of=("self",))
            .select_related("catalog", "change_request")
            .get(pk=job_id)
        )
        if job.plan_hash != plan_hash:
            raise BulkError("The job's plan is not the one that was approved; nothing was sent.")
        if job.state == JobState.CANCELLED:
            return {"job": job.pk, "state": job.state, "note": "The job was cancelled."}
        if BulkBatch.objects.filter(job=job).exists():
            return {"job": job.pk, "state": job.state, "note": "Already started."}
        if job.state not in (JobState.REVIEW, JobState.READY):
            raise BulkError(f"The job is {job.get_state_display().lower()}; it cannot start.")
        cr = job.change_request
        if cr is not None and cr.state not in (ChangeState.APPROVED, ChangeState.APPLYING):
            # A rejected or withdrawn request must never start its job, whoever calls.
            raise BulkError(
                f"Change request #{cr.pk} is {cr.get_state_display().lower()}; nothing was sent."
            )
        changed = _fields_changed_since_preview(job)
        if changed:
            raise BulkError(
                f"The fields of {job.catalog.name} changed after this job was previewed: "
                f"{'; '.join(changed)}. Nothing was sent; upload the file again to preview "
                "it against the catalog as it is now."
            )
        with connection.cursor() as cursor:
            # The statistics do not know this job's rows yet (autovacuum lags a big upload
            # and the run-time role may not ANALYZE), so the planner takes every CTE for one
            # row and nests loops over them, rows times batches: 7.9 s for 25,000 items and
            # (extrapolated) hours for a million. Hash joins keep it linear (0.6 s).
            cursor.execute("SELECT current_setting('enable_nestloop')")
            (nestloop,) = cursor.fetchone() or ("on",)
            cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
            cursor.execute(
                _BATCH_SQL,
                {
                    "job": job.pk,
                    "ops": [str(op) for op in _SEND_ORDER],
                    "pending": BatchState.PENDING,
                },
            )
            cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [nestloop])
        batches = BulkBatch.objects.filter(job=job).count()
        blocker = _overlapping_job(job)
        job_move(
            job,
            JobState.WAITING if blocker else JobState.RUNNING,
            actor=actor,
            action=events.CATALOG_BULK_APPROVED_START,
            data={
                "batches": batches,
                "items": job.items_to_send,
                "plan_hash": plan_hash,
                "waiting_for": blocker,
            },
            waiting_for_id=blocker,
            started_at=None if blocker else timezone.now(),
        )
        if not blocker:
            transaction.on_commit(partial(senders_kick, workspace=job.workspace))
    return {"job": job.pk, "state": job.state, "batches": batches, "waiting_for": blocker}


def bulk_job_try_start(*, job_id: int) -> bool:
    """Start a waiting job once no running job touches its items (called by the sweeper)."""
    with transaction.atomic():
        catalog_id = (
            BulkJob.objects.filter(pk=job_id, state=JobState.WAITING)
            .values_list("catalog_id", flat=True)
            .first()
        )
        if catalog_id is None or not _lock_catalog(catalog_id, wait=False):
            return False  # the next sweep looks again
        job = (
            BulkJob.objects.select_for_update(skip_locked=True)
            .select_related("catalog")
            .filter(pk=job_id, state=JobState.WAITING)
            .first()
        )
        if job is None:
            return False
        # Waiting jobs go in the order of their ids: counting every waiting job as a
        # blocker, two waiting on the same items would each wait for the other for ever.
        blocker = _overlapping_job(job, among=_HOLDING | Q(state=JobState.WAITING, pk__lt=job.pk))
        if blocker:
            if blocker != job.waiting_for_id:
                BulkJob.objects.filter(pk=job.pk).update(waiting_for_id=blocker)
            return False
        job_move(
            job,
            JobState.RUNNING,
            actor=PIPELINE_ACTOR,
            action=events.CATALOG_BULK_STARTED,
            waiting_for_id=None,
            started_at=timezone.now(),
        )
        transaction.on_commit(partial(senders_kick, workspace=job.workspace))
    return True


# --- pause, resume, cancel, retry -----------------------------------------------------------


def _locked(job: BulkJob) -> BulkJob:
    return BulkJob.objects.select_for_update().select_related("catalog").get(pk=job.pk)


def bulk_job_pause(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    """Stop claiming batches; a batch already in flight finishes and is recorded."""
    with transaction.atomic(durable=True):
        job = _locked(job)
        if job.state not in (JobState.RUNNING, JobState.WAITING):
            raise BulkError(f"A job that is {job.get_state_display().lower()} cannot be paused.")
        job_move(job, JobState.PAUSED, actor=actor, action=events.CATALOG_BULK_PAUSED)
    return job


def bulk_job_resume(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    with transaction.atomic(durable=True):
        _lock_catalog(job.catalog_id)
        job = _locked(job)
        if job.state != JobState.PAUSED:
            raise BulkError("Only a paused job can be resumed.")
        # A paused job kept its place: the jobs waiting for it must not now hold it up.
        blocker = _overlapping_job(job, among=_HOLDING)
        # Batches Braze refused for full storage go again now: the audit says how many.
        refused = BulkBatch.objects.filter(
            job=job, state__in=CLAIMABLE_STATES, error_ids__in=STORAGE_LIMIT_IDS
        ).aggregate(n=Count("id"), items=Sum("item_count"))
        data = None
        if refused["n"]:
            data = {"storage_refused_batches": refused["n"], "storage_items": refused["items"]}
        job_move(
            job,
            JobState.WAITING if blocker else JobState.RUNNING,
            actor=actor,
            action=events.CATALOG_BULK_RESUMED,
            data=data,
            waiting_for_id=blocker,
            error_message="",
            started_at=job.started_at or (None if blocker else timezone.now()),
        )
        transaction.on_commit(partial(senders_kick, workspace=job.workspace))
    return job


# --- send failed batches again ----------------------------------------------------------------

# Differences a retry's change request carries in full (all of them are in its hash).
RETRY_CHANGES_SHOWN = 200
_CLOSED_REQUEST = (ChangeState.APPLIED, ChangeState.REJECTED, ChangeState.CANCELLED)


def _open_retry_request(job: BulkJob) -> ChangeRequest | None:
    cr = job.retry_request
    return cr if cr is not None and cr.state not in _CLOSED_REQUEST else None


def _retry_checked(job: BulkJob, *, asking: bool) -> tuple[BulkJob, list[int]]:
    """Lock the catalog and the job; the failed batches, unless sending them is refused."""
    _lock_catalog(job.catalog_id)
    job = (
        BulkJob.objects.select_for_update(of=("self",))
        .select_related("catalog", "retry_request")
        .get(pk=job.pk)
    )
    batch_ids = list(
        BulkBatch.objects.filter(job=job, state=BatchState.FAILED)
        .order_by("seq")
        .values_list("pk", flat=True)
    )
    if job.state not in (JobState.DONE, JobState.PAUSED, JobState.RUNNING) or not batch_ids:
        raise BulkError("This job has no failed batches to send again.")
    pending = _open_retry_request(job) if asking else None
    if pending is not None:
        raise BulkError(
            f"Sending these batches again already waits for change request #{pending.pk} "
            f"({pending.get_state_display().lower()}); approve, retry or withdraw it there."
        )
    # A finished job gave its items up: any job started since may hold them. A running or
    # paused one still holds them, and the jobs over its items wait for it.
    among = _ACTIVE if job.state == JobState.DONE else _HOLDING
    blocker = _overlapping_job(job, among=among)
    if blocker:
        raise BulkError(
            f"Bulk job #{blocker} changes some of the same items and has not finished; "
            "sending these again now could undo its changes. Try again once it has finished."
        )
    return job, batch_ids


def _retry_needs_rediff(job: BulkJob, batch_ids: list[int]) -> bool:
    """Whether the mirror may have moved under the failed items since the preview.

    Long after the failure (BULK_RETRY_REDIFF_AFTER_SECONDS) anyone may have changed them
    in the dashboard; and a job started on the catalog since this one may have changed
    them however recently. Either way the items are diffed against the mirror again.
    """
    failed_at = BulkBatch.objects.filter(pk__in=batch_ids).aggregate(at=Max("finished_at"))["at"]
    limit = timedelta(seconds=settings.BULK_RETRY_REDIFF_AFTER_SECONDS)
    if failed_at is None or job.started_at is None or timezone.now() - failed_at >= limit:
        return True
    return (
        BulkJob.objects.filter(catalog_id=job.catalog_id, started_at__gt=job.started_at)
        .exclude(pk=job.pk)
        .exists()
    )


def _landed(sent: dict[str, Any], held: dict[str, Any], types: dict[str, str]) -> bool:
    """The mirror holds exactly the whole item the row sends (the send landed after all)."""
    return set(held) <= set(sent) and all(
        preview.same_value(types.get(k), v, held.get(k)) for k, v in sent.items()
    )


def _item_moved(
    then: dict[str, Any] | None,
    now: dict[str, Any] | None,
    sent: dict[str, Any] | None,
    types: dict[str, str],
) -> list[tuple[str, Any, Any, Any]]:
    if then is None or now is None:
        return [] if then is None and now is None else [(ITEM_FIELD, then, now, sent)]
    return [
        (k, then.get(k), now.get(k), None if sent is None else sent.get(k))
        for k in sorted(set(then) | set(now))
        if not preview.same_value(types.get(k), then.get(k), now.get(k))
    ]


def _moved(
    op: str,
    payload: dict[str, Any] | None,
    before: dict[str, Any] | None,
    current: dict[str, Any] | None,
    types: dict[str, str],
) -> list[tuple[str, Any, Any, Any]]:
    """(field, at the preview, in the mirror now, to be sent) for each value that moved."""
    if op == RowOp.UPDATE:
        if current is None:
            return [(ITEM_FIELD, before, None, payload)]  # deleted since
        moved = []
        for key, value in (payload or {}).items():
            then, now = (before or {}).get(key), current.get(key)
            after = rules.apply_array_ops(then, value) if rules.is_array_ops(value) else value
            kind = types.get(key)
            if not preview.same_value(kind, then, now) and not preview.same_value(kind, now, after):
                moved.append((key, then, now, value))
        return moved
    if op == RowOp.DELETE:
        return [] if current is None else _item_moved(before, current, None, types)
    sent = payload or {}
    if current is not None and _landed(sent, current, types):
        return []
    return _item_moved(before, current, sent, types)


def _retry_changes(job: BulkJob, batch_ids: list[int]) -> list[dict[str, Any]]:
    """The failed items' values that changed in the mirror since the preview, by line.

    Sending them again would overwrite those changes (someone's edit in the dashboard, a
    newer job) with what was approved before them.
    """
    types = job.catalog.field_types()
    rows = (
        BulkRow.objects.filter(batch_id__in=batch_ids)
        .order_by("line")
        .values_list("line", "item_id", "op", "payload", "before")
    )
    changes: list[dict[str, Any]] = []
    for chunk in batched(rows.iterator(chunk_size=CHUNK_ROWS), CHUNK_ROWS):
        mirror = dict(
            CatalogItem.objects.filter(
                catalog_id=job.catalog_id, item_id__in=[row[1] for row in chunk]
            ).values_list("item_id", "data")
        )
        for line, item_id, op, payload, before in chunk:
            for field, then, now, sent in _moved(op, payload, before, mirror.get(item_id), types):
                changes.append(
                    {
                        "line": line,
                        "item_id": item_id,
                        "op": op,
                        "field": field,
                        "at_preview": then,
                        "now": now,
                        "sent": sent,
                    }
                )
    return changes


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _retry_send(
    *,
    actor: Actor,
    job: BulkJob,
    batch_ids: list[int],
    data: dict[str, Any],
    fields: dict[str, Any] | None = None,
) -> None:
    """Send the failed batches again (in the caller's transaction, under its locks)."""
    failed = BulkBatch.objects.filter(pk__in=batch_ids)
    # A failed batch may have landed (timeouts): send it as in doubt, so creates go as PUT.
    rows_move(BulkRow.objects.filter(batch__in=failed), RowOutcome.PENDING)
    batches_move(
        failed,
        BatchState.IN_DOUBT,
        from_=(BatchState.FAILED,),
        attempts=0,
        next_attempt_at=None,
        finished_at=None,
    )
    job_move(
        job,
        JobState.RUNNING,
        actor=actor,
        action=events.CATALOG_BULK_RETRY_FAILED,
        data={"batches": len(batch_ids), **data},
        finished_at=None,
        **(fields or {}),
    )
    transaction.on_commit(partial(senders_kick, workspace=job.workspace))


def bulk_job_retry_failed(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    """Send the failed batches again (a person decided to); each send counts as a retry.

    Refused while another job over the same items may send. When the items may have moved
    since the preview (`_retry_needs_rediff`) they are diffed against the mirror again, and
    if any changed, nothing is sent: a change request shows the differences and needs
    another person's approval (`job.retry_request`; its apply step sends them).
    """
    with transaction.atomic(durable=True):
        job, batch_ids = _retry_checked(job, asking=True)
        rediff = _retry_needs_rediff(job, batch_ids)
        changes = _retry_changes(job, batch_ids) if rediff else []
        if not changes:
            _retry_send(
                actor=actor,
                job=job,
                batch_ids=batch_ids,
                data={"rediffed": rediff, "changed_items": 0},
            )
            return job
        job.retry_round += 1
        job.save(update_fields=["retry_round"])
        round_no = job.retry_round
    cr = _retry_propose(
        actor=actor, job=job, round_no=round_no, batch_ids=batch_ids, changes=changes
    )
    with transaction.atomic(durable=True):
        job = _locked(job)
        pending = _open_retry_request(job)
        if pending is None and job.retry_round == round_no:
            job.retry_request = cr
            job.save(update_fields=["retry_request"])
            bulk_job_audit(
                actor=actor,
                job=job,
                action=events.CATALOG_BULK_RETRY_APPROVAL_REQUESTED,
                data={
                    "change_request": cr.pk,
                    "batches": len(batch_ids),
                    "changed_items": cr.payload["changed_items"],
                },
            )
            return job
    # Someone asked at the same moment: theirs stands, this one is withdrawn.
    change_request_cancel(actor=actor, change_request=cr, comment="Asked twice at once.")
    raise BulkError(
        f"Sending these batches again already waits for change request "
        f"#{pending.pk if pending else job.retry_request_id}."
    )


def _retry_propose(
    *,
    actor: AbstractBaseUser,
    job: BulkJob,
    round_no: int,
    batch_ids: list[int],
    changes: list[dict[str, Any]],
) -> ChangeRequest:
    changed_items = len({c["item_id"] for c in changes})
    payload = {
        "job": job.pk,
        "catalog": job.catalog.name,
        "operation": job.operation,
        "retry": round_no,
        "plan_hash": job.plan_hash,
        "batches": len(batch_ids),
        "items": BulkRow.objects.filter(batch_id__in=batch_ids).count(),
        "changed_items": changed_items,
        "changes": changes[:RETRY_CHANGES_SHOWN],
        "changes_total": len(changes),
        "batches_hash": _digest(batch_ids),
        "changes_hash": _digest(changes),
    }
    try:
        return change_request_propose(
            actor=actor,
            resource_type=BULK_RESOURCE,
            identifier=f"{job_identifier(job)}/retry-{round_no}",
            action="bulk",
            payload=payload,
            base_snapshot=None,
            title=(
                f"Send {len(batch_ids):,} failed batches of bulk job #{job.pk} again "
                f"({changed_items:,} items changed since its preview)"
            ),
        )
    except ChangeRequestError as exc:
        raise BulkError(
            f"{changed_items:,} of these items changed in the mirror since the preview, so "
            f"sending them again needs a new change request: {exc}"
        ) from None


def bulk_job_retry_approved(*, payload: dict[str, Any], actor: Actor) -> dict[str, Any]:
    """Send the failed batches again as approved (the applier's apply step for a retry).

    Sends only if the failed batches and the differences are still those approved.
    """
    job_id, round_no = int(payload["job"]), int(payload["retry"])
    with transaction.atomic(durable=True):
        _lock_catalog(_catalog_of(job_id))
        job = (
            BulkJob.objects.select_for_update(of=("self",)).select_related("catalog").get(pk=job_id)
        )
        if job.retry_round_sent >= round_no:
            return {"job": job.pk, "state": job.state, "note": "Already sent again."}
        if job.retry_round != round_no:
            raise BulkError(
                "A newer request to send these batches again replaced this one; nothing was sent."
            )
        job, batch_ids = _retry_checked(job, asking=False)
        if _digest(batch_ids) != payload["batches_hash"]:
            raise BulkError(
                "The job's failed batches are no longer the ones approved; nothing was sent. "
                "Ask again from the job page."
            )
        changes = _retry_changes(job, batch_ids)
        if _digest(changes) != payload["changes_hash"]:
            raise BulkError(
                "Items changed again in the mirror since this was approved; nothing was sent. "
                "Ask again from the job page to review the differences as they are now."
            )
        _retry_send(
            actor=actor,
            job=job,
            batch_ids=batch_ids,
            data={
                "rediffed": True,
                "changed_items": payload["changed_items"],
                "change_request": job.retry_request_id,
            },
            fields={"retry_round_sent": round_no, "retry_request": None},
        )
    return {"job": job.pk, "state": job.state, "batches": len(batch_ids)}


def bulk_job_retry_not_approved(*, change_request_id: int, actor: Actor) -> int:
    """Forget a retry request that was rejected or withdrawn (nothing was sent)."""
    count = 0
    for job_id in BulkJob.objects.filter(retry_request_id=change_request_id).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            job = _locked(BulkJob(pk=job_id))
            if job.retry_request_id != change_request_id:
                continue
            job.retry_request = None
            job.save(update_fields=["retry_request"])
            bulk_job_audit(
                actor=actor,
                job=job,
                action=events.CATALOG_BULK_RETRY_NOT_APPROVED,
                data={"change_request": change_request_id},
            )
            count += 1
    return count


def _withdraw_change_request(*, actor: AbstractBaseUser, job: BulkJob) -> int | None:
    """Withdraw the change request of a job that has not started; returns its id.

    Only its author may withdraw a change request, here as on its own page; a reviewer
    rejects it instead. A request already being applied has started the job (or is about
    to): then nothing is withdrawn and the job is cancelled as a started one.
    """
    fresh = BulkJob.objects.select_related("change_request").get(pk=job.pk)
    cr = fresh.change_request
    if cr is None or fresh.state not in (JobState.READY, JobState.REVIEW):
        return None
    if cr.state not in CANCELLABLE:
        return None
    try:
        change_request_cancel(
            actor=actor, change_request=cr, comment=f"Bulk job #{job.pk} was cancelled."
        )
    except ChangeRequestInvalidTransition:
        return None
    except ChangeRequestError:
        raise BulkError(
            f"Only the author of change request #{cr.pk} can withdraw it, and with it this "
            "job; a reviewer can reject it instead."
        ) from None
    return cr.pk


def _cancel_unsent_rows(job: BulkJob) -> int:
    """Every item not sent yet is reported as not sent; returns the batches cancelled."""
    pending = BulkBatch.objects.filter(job=job, state__in=CLAIMABLE_STATES)
    rows_move(BulkRow.objects.filter(batch__in=pending), RowOutcome.CANCELLED)
    cancelled = batches_move(
        pending, BatchState.CANCELLED, from_=CLAIMABLE_STATES, finished_at=timezone.now()
    )
    if not BulkBatch.objects.filter(job=job).exists():
        rows_move(
            BulkRow.objects.filter(job=job), RowOutcome.CANCELLED, from_=(RowOutcome.PENDING,)
        )
    return cancelled


def bulk_job_cancel(*, actor: AbstractBaseUser, job: BulkJob) -> BulkJob:
    """Send nothing more. Batches in flight finish; the rest are reported as not sent.

    Before the job starts its change request is withdrawn as well, so it leaves the
    reviewers' queues and can no longer be approved.
    """
    fresh = BulkJob.objects.get(pk=job.pk)
    if fresh.state in (JobState.DONE, JobState.CANCELLED):
        raise BulkError(f"The job is already {fresh.get_state_display().lower()}.")
    withdrawn = _withdraw_change_request(actor=actor, job=fresh)
    with transaction.atomic(durable=True):
        job = _locked(job)
        if withdrawn is not None and job.state == JobState.CANCELLED:
            return job  # the withdrawal's hook closed it, in this actor's name
        if job.state in (JobState.DONE, JobState.CANCELLED):
            raise BulkError(f"The job is already {job.get_state_display().lower()}.")
        cancelled = _cancel_unsent_rows(job)
        job_move(
            job,
            JobState.CANCELLED,
            actor=actor,
            action=events.CATALOG_BULK_CANCELLED,
            data={
                "batches_cancelled": cancelled,
                "change_request_withdrawn": withdrawn,
                **batch_totals(job),
            },
            finished_at=timezone.now(),
        )
    return job


def bulk_jobs_close_unapproved(
    *, change_request_id: int | None = None, actor: Actor = PIPELINE_ACTOR
) -> int:
    """Cancel jobs whose change request was rejected or withdrawn.

    Such a request can never be approved again, so its job would wait for review for
    ever; it is closed, with the reason on the job page. The change-request hook calls
    this for one request right after the decision; the sweeper for all, in case that
    call was lost. Returns how many were closed.
    """
    closed = (ChangeState.REJECTED, ChangeState.CANCELLED)
    count = 0
    waiting = BulkJob.objects.filter(
        workspace=workspace_active().key,
        state=JobState.REVIEW,
        change_request__state__in=closed,
    )
    if change_request_id is not None:
        waiting = waiting.filter(change_request_id=change_request_id)
    job_ids = waiting.values_list("pk", flat=True)
    for job_id in job_ids:
        with transaction.atomic():
            job = (
                BulkJob.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("catalog", "change_request")
                .filter(pk=job_id, state=JobState.REVIEW, change_request__state__in=closed)
                .first()
            )
            if job is None or job.change_request is None:
                continue
            cr = job.change_request
            verb = "rejected" if cr.state == ChangeState.REJECTED else "withdrawn"
            _cancel_unsent_rows(job)
            job_move(
                job,
                JobState.CANCELLED,
                actor=actor,
                action=events.CATALOG_BULK_CANCELLED,
                data={"reason": f"change_request_{verb}", "change_request": cr.pk},
                finished_at=timezone.now(),
                error_message=f"Change request #{cr.pk} was {verb}; nothing was sent.",
            )
            count += 1
    return count


# --- the sweeper ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    in_doubt: int
    started: int
    finished: int
    senders_started: int
    closed_unapproved: int = 0
    readbacks_requeued: int = 0
    parses_requeued: int = 0


def bulk_sweep(*, now: datetime | None = None) -> SweepResult:
    """Re-queue what was lost: expired leases, waiting jobs, finished jobs, dead senders,
    late read-backs, unfinished parses; and close jobs whose change request was rejected or
    withdrawn. Only the jobs of the workspace being worked in (beat sweeps each workspace),
    so what it starts and audits is that workspace's."""
    now = now or timezone.now()
    workspace = workspace_active().key
    jobs = BulkJob.objects.filter(workspace=workspace)
    in_doubt = batches_expire(now=now)
    closed = bulk_jobs_close_unapproved()
    started = sum(
        bulk_job_try_start(job_id=job_id)
        for job_id in jobs.filter(state=JobState.WAITING).values_list("pk", flat=True)
    )
    finished = sum(
        bulk_job_finish_if_done(job_id=job_id)
        for job_id in jobs.filter(state__in=(JobState.RUNNING, JobState.PAUSED)).values_list(
            "pk", flat=True
        )
    )
    senders = 0
    if BulkBatch.objects.filter(
        job__workspace=workspace, job__state=JobState.RUNNING, state__in=CLAIMABLE_STATES
    ).exists():
        senders = senders_kick(workspace=workspace)
    readbacks = readback_sweep(now=now)
    parses = bulk_jobs_parse_requeue(now=now)
    return SweepResult(in_doubt, started, finished, senders, closed, readbacks, parses)
