"""Reading uploaded files: every malformed case gives the right row errors and sends nothing."""

from typing import Any

import pytest

from catalog_bulk.models import BulkJob, BulkRow, JobState, RowOp
from catalog_bulk.selectors import bulk_job_error_csv_rows
from tests.catalog_bulk.conftest import MakeJob

pytestmark = pytest.mark.django_db


def _errors(job: BulkJob) -> dict[int, list[str]]:
    return {
        row.line: row.errors
        for row in BulkRow.objects.filter(job=job, op=RowOp.ERROR).order_by("line")
    }


def _row(job: BulkJob, item_id: str) -> BulkRow:
    return BulkRow.objects.get(job=job, item_id=item_id)


def test_it_reads_a_bom_crlf_file_with_quoted_commas_and_newlines(make_job: MakeJob) -> None:
    content = (
        "\ufeffid,name,price\r\n"
        'sku-9,"Mug, large",12\r\n'
        'sku-10,"Two\r\nlines",3\r\n'
        "sku-11,Plain,4\r\n"
    ).encode()
    job = make_job(content)
    assert job.state == JobState.READY
    assert job.columns == ["id", "name", "price"]
    assert _row(job, "sku-9").payload == {"name": "Mug, large", "price": 12}
    assert _row(job, "sku-10").payload == {"name": "Two\r\nlines", "price": 3}
    # The record after a two-line value starts on line 5.
    assert _row(job, "sku-11").line == 5
    assert (job.n_create, job.n_error) == (3, 0)


def test_it_reports_bad_and_too_long_ids_with_their_line(make_job: MakeJob) -> None:
    job = make_job(b"id,name\nbad id!,x\n" + b"a" * 251 + b",y\n,z\nok-1,w\n")
    errors = _errors(job)
    assert "invalid-ids" in errors[2][0]
    assert "ids-too-large" in errors[3][0]
    assert "items-missing-ids" in errors[4][0]
    assert job.n_error == 3
    assert job.n_create == 1


def test_it_refuses_a_duplicate_id_naming_the_first_line(make_job: MakeJob) -> None:
    job = make_job(b"id,name\nsku-5,a\nsku-6,b\nsku-5,c\n")
    assert _errors(job) == {
        4: ["The id “sku-5” is already on line 2 of this file (ids-not-unique)."]
    }
    assert job.n_create == 2


def test_it_finds_a_duplicate_across_chunks(make_job: MakeJob) -> None:
    lines = [f"item-{n},x" for n in range(1500)] + ["item-3,again"]
    job = make_job(("id,name\n" + "\n".join(lines) + "\n").encode())
    errors = _errors(job)
    assert list(errors) == [1502]
    assert "already on line 5" in errors[1502][0]


def test_it_refuses_an_unknown_column_on_every_row(make_job: MakeJob) -> None:
    job = make_job(b"id,name,colour\nsku-5,a,red\nsku-6,b,\n")
    errors = _errors(job)
    assert set(errors) == {2, 3}
    assert "“colour” is not a field of this catalog (invalid-fields)" in errors[2][0]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("price", "cheap", "is not a number"),
        ("in_stock", "maybe", "Choose true or false"),
        ("released_at", "yesterday", "is not an ISO 8601 time"),
    ],
)
def test_it_refuses_a_value_of_the_wrong_type(
    make_job: MakeJob, column: str, value: str, message: str
) -> None:
    job = make_job(f"id,{column}\nsku-5,{value}\n".encode())
    [error] = _errors(job)[2]
    assert error.startswith(f"Column “{column}”")
    assert message in error
    assert "unable-to-coerce-value" in error


def test_it_refuses_a_value_over_5000_characters(make_job: MakeJob) -> None:
    job = make_job(b"id,name\nsku-5," + b"x" * 5001 + b"\n")
    assert "items-too-large" in _errors(job)[2][0]


def test_it_refuses_a_ragged_row(make_job: MakeJob) -> None:
    job = make_job(b"id,name,price\nsku-5,a\nsku-6,b,1\n")
    assert "has 2 values but the header has 3 columns" in _errors(job)[2][0]
    assert job.n_create == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,price\nMug,1\n", "no id column"),
        (b"id,name\nsku-\xff\xfe,x\n", "not UTF-8"),
        (b"", "empty"),
        (b"id,name,name\nsku-1,a,b\n", "names these columns twice"),
        (b'id,name\nsku-1,"unclosed\n', "cannot be read as CSV"),
    ],
)
def test_it_refuses_an_unreadable_file_and_keeps_no_rows(
    make_job: MakeJob, content: bytes, message: str
) -> None:
    if not content:
        from catalog_bulk.services import BulkError

        with pytest.raises(BulkError, match="empty"):
            make_job(content)
        return
    job = make_job(content)
    assert job.state == JobState.INVALID
    assert message in " ".join(job.file_errors)
    assert not BulkRow.objects.filter(job=job).exists()


def test_it_reads_json_lines_with_typed_values(make_job: MakeJob) -> None:
    content = (
        b'\xef\xbb\xbf{"id": "sku-7", "name": "Bowl", "price": 3.5, "in_stock": true}\r\n'
        b"\n"
        b'{"id": "sku-8", "released_at": "2026-03-01T09:30:00Z"}\n'
    )
    job = make_job(content, name="items.jsonl")
    assert job.file_format == "jsonl"
    assert job.state == JobState.READY
    assert _row(job, "sku-7").payload == {"name": "Bowl", "price": 3.5, "in_stock": True}
    assert _row(job, "sku-8").payload == {"released_at": "2026-03-01T09:30:00.000+00:00"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "one JSON object"),
        (b'{"id": 12}', "ids-not-strings"),
        (b'{"id": "sku-9", "price": "ten"}', "is not a number"),
        (b'{"id": "sku-9", "in_stock": "yes"}', "Choose true or false"),
        (b'{"id": "sku-9", "name": {"a": 1}}', "Expected text"),
        (b'{"id": "sku-9", "colour": "red"}', "invalid-fields"),
    ],
)
def test_it_reports_bad_json_lines(make_job: MakeJob, line: bytes, message: str) -> None:
    job = make_job(b'{"id": "ok-1", "name": "fine"}\n' + line + b"\n", name="x.jsonl")
    errors = _errors(job)
    assert list(errors) == [2]
    assert message in " ".join(errors[2])
    assert job.n_create == 1


def test_the_error_csv_gives_the_rows_back_as_uploaded_with_reasons(make_job: MakeJob) -> None:
    job = make_job(b"id,name,price\nsku-5,a,cheap\nsku-6,b,1\nbad id,c,2\n")
    rows: list[list[Any]] = list(bulk_job_error_csv_rows(job=job))
    assert rows[0] == ["id", "name", "price", "_console_errors"]
    assert rows[1][:3] == ["sku-5", "a", "cheap"]
    assert "line 2" in rows[1][3]
    assert rows[2][:3] == ["bad id", "c", "2"]
    assert "invalid-ids" in rows[2][3]
    assert len(rows) == 3


def test_a_fixed_error_csv_can_be_uploaded_again(make_job: MakeJob) -> None:
    job = make_job(b"id,name,_console_errors\nsku-5,a,line 2: price was wrong\n")
    assert job.state == JobState.READY
    assert job.n_create == 1
    assert job.n_error == 0
