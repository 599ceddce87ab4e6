"""The CSV parse checks records with a checker prepared once from the header and stores a
chunk while the next is checked; its verdicts, messages, payloads and plan hash are those of
the row-at-a-time path (``parsing.read_csv``, ``validation.check_row`` and ``RowAtATimePlanner``,
which stores each chunk before reading on), which stays the reference."""

import csv
import hashlib
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from catalog_bulk import parsing, preview, services
from catalog_bulk.models import SENT_OPS, BulkJob, BulkRow, JobState
from catalogs.models import Catalog
from console.audit.hashing import canonical_json, canonical_json_decoded
from tests.catalog_bulk.conftest import MakeJob
from tests.catalog_bulk.reference_planner import RowAtATimePlanner
from tests.factories import catalog_item_create

pytestmark = pytest.mark.django_db

# Each list starts with values Braze accepts; a cell takes one of those mostly.
_NAMES = ["Mug", "", "'=SUM(A1)", "'-5", "  spaced  ", "Two\nlines", 'quo"te', "'", "x" * 5001]
_PRICES = ["12", "1.5", "1e3", " 7 ", "", "'-3", "1_000", "-0", "12.0", "abc", "nan", "inf"]
_BOOLEANS = ["true", "FALSE", " True ", "", "false", "yes", "'true"]
_TIMES = ["2026-03-01T09:30:00Z", "2026-03-01T09:30:00+00:00", "", "2026-03-01", "not a time"]
_TAGS = ['["a","b"]', '{"$add":["c"]}', '{"$remove":["a"]}', "", "[1", '"x"', '{"$bogus":1}']
_META = ['{"a":1}', "", '{"a": 2}', '{"a.b":1}', "[]", "{bad"]


def _row_at_a_time(planner: Any, path: Path, header: list[str]) -> None:
    for raw in parsing.read_csv(path):
        planner.add(raw, from_csv=True)


def _cell(rng: random.Random, values: list[str], accepted: int) -> str:
    return rng.choice(values[:accepted] if rng.random() < 0.95 else values)


def _file(rng: random.Random, rows: int, *, unknown: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["id", "name", "price", "in_stock", "released_at", "tags", "meta"]
    header += ["_console_errors", *(["extra1", "extra2"] if unknown else [])]
    writer.writerow(header)
    used: list[str] = []
    mirrored = 0
    for n in range(rows):
        pick = rng.random()
        if pick < 0.1 and mirrored < 250:
            item_id = f"m-{mirrored}"  # the mirror holds m-0 … m-199
            mirrored += 1
        elif pick < 0.13 and used:
            item_id = rng.choice(used)  # a duplicate
        elif pick < 0.16:
            item_id = rng.choice(["", "  ", "bad id!", "a" * 251, "'=x", " padded-id ", "'-y"])
        else:
            item_id = f"it-{n}"
        used.append(item_id)
        cells = [
            item_id,
            _cell(rng, _NAMES, 8),
            _cell(rng, _PRICES, 9),
            _cell(rng, _BOOLEANS, 5),
            _cell(rng, _TIMES, 4),
            _cell(rng, _TAGS, 4),
            _cell(rng, _META, 3),
            "an old reason",
            *([rng.choice(["", "junk"]), ""] if unknown else []),
        ]
        k = mirrored - 1
        if item_id == f"m-{k}" and k < 200 and rng.random() < 0.5:
            # The mirror's own values (the time in another notation): unchanged.
            price, in_stock = ("12", "true") if k % 2 else ("1.5", "false")
            name = "Mug" if k % 3 else "Cup"
            time = "2026-03-01T09:30:00+00:00"
            cells[1:7] = [name, price, in_stock, time, '["a","b"]', '{"a": 1}']
        if rng.random() < 0.02:
            cells = cells[: rng.randrange(1, len(cells))] if rng.random() < 0.5 else [*cells, "x"]
        writer.writerow(cells)
    out.write("\n\n")  # trailing blank lines
    return out.getvalue().encode()


def _rows(job: BulkJob) -> list[tuple[Any, ...]]:
    return list(
        BulkRow.objects.filter(job=job)
        .order_by("line")
        .values_list("line", "item_id", "op", "payload", "before", "errors", "raw", "outcome")
    )


def _counts(job: BulkJob) -> tuple[int, ...]:
    return (job.rows_read, job.n_create, job.n_update, job.n_unchanged, job.n_delete, job.n_error)


def _same_verdicts(
    make_job: MakeJob, content: bytes, operation: str, rows: int, name: str = "items.csv"
) -> set[str]:
    """Parse ``content`` both ways; every stored row, count and the plan hash agree. Returns
    the verdicts (row ops) the file reached."""
    fast = make_job(content, operation, name=name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "_plan_csv", _row_at_a_time)
        # Each chunk stored before the next is read, a row at a time through write_row.
        patch.setattr(services, "_PipelinedPlanner", RowAtATimePlanner)
        reference = make_job(content, operation, name=name)
    assert fast.state == reference.state == JobState.READY
    assert fast.rows_read == rows  # every record is a row, blank lines none
    assert _counts(fast) == _counts(reference)
    assert _rows(fast) == _rows(reference)
    assert fast.plan_hash == reference.plan_hash
    # The hash is the plan's: each sent row's [line, op, id, payload], canonical, in order.
    digest = hashlib.sha256()
    for line, item_id, op, payload, *_ in _rows(fast):
        if op in SENT_OPS:
            digest.update(canonical_json([line, op, item_id, payload]).encode())
    assert fast.plan_hash == digest.hexdigest()
    return {op for _, _, op, *_ in _rows(fast)}


@pytest.fixture
def mirrored(catalog: Catalog) -> Catalog:
    """The catalog with an array and an object field, and 200 items m-0 … m-199."""
    catalog.fields = [
        *catalog.fields,
        {"name": "tags", "type": "array"},
        {"name": "meta", "type": "object"},
    ]
    catalog.save()
    for k in range(200):
        catalog_item_create(
            catalog,
            f"m-{k}",
            name="Mug" if k % 3 else "Cup",
            price=12 if k % 2 else 1.5,
            in_stock=bool(k % 2),
            released_at="2026-03-01T09:30:00.000Z",
            tags=["a", "b"],
            meta={"a": 1},
        )
    return catalog


_VERDICTS = {
    "upsert": {"create", "update", "unchanged", "error"},
    "update": {"update", "unchanged", "error"},
    "create": {"create", "error"},
    "replace": {"replace", "unchanged", "error"},
    "delete": {"delete", "unchanged", "error"},
}


@pytest.mark.parametrize("operation", sorted(_VERDICTS))
def test_a_large_files_verdicts_match_the_row_at_a_time_path(
    make_job: MakeJob,
    mirrored: Catalog,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
) -> None:
    # Small chunks: duplicates are found within a chunk and across chunks, and a few error
    # rows keep their values while the rest keep only their reasons.
    monkeypatch.setattr(services, "PARSE_CHUNK_ROWS", 400)
    settings.BULK_ERROR_ROWS_WITH_VALUES = 100
    content = _file(random.Random(24), 3000)
    assert _same_verdicts(make_job, content, operation, 3000) == _VERDICTS[operation]


def test_unknown_columns_give_the_same_messages_both_ways(
    make_job: MakeJob, mirrored: Catalog, settings: Settings
) -> None:
    settings.BULK_UNKNOWN_COLUMNS_NAMED = 1
    content = _file(random.Random(7), 200, unknown=True)
    assert _same_verdicts(make_job, content, "upsert", 200) == {"error"}
    row = BulkRow.objects.filter(
        errors__contains=["…and 1 more columns that are not fields of this catalog."]
    )
    assert row.exists()


def _jsonl(content: bytes) -> bytes:
    """The CSV corpus's records as JSON Lines objects (ragged records as they come)."""
    records = list(csv.reader(io.StringIO(content.decode())))
    header, lines = records[0], []
    for record in records[1:]:
        if record:
            lines.append(json.dumps(dict(zip(header, record, strict=False))))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("operation", ["upsert", "replace"])
def test_a_json_lines_files_rows_match_the_planner_that_stores_each_chunk_before_reading_on(
    make_job: MakeJob,
    mirrored: Catalog,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
) -> None:
    monkeypatch.setattr(services, "PARSE_CHUNK_ROWS", 300)
    settings.BULK_ERROR_ROWS_WITH_VALUES = 50
    content = _jsonl(_file(random.Random(11), 2000))
    _same_verdicts(make_job, content, operation, 2000, name="items.jsonl")
    # Duplicates found in the same chunk and in earlier ones (300 lines and more back).
    job = BulkJob.objects.latest("pk")  # either parse: both stored the same rows
    back = [
        line - int(found)
        for line, *_, errors, _, _ in _rows(job)
        for error in errors
        for found in re.findall(r"already on line (\d+) of this file", error)
    ]
    assert min(back) < 300 < max(back)


def test_a_row_that_cannot_be_planned_mid_file_stores_nothing_and_refuses_the_file(
    make_job: MakeJob, mirrored: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "PARSE_CHUNK_ROWS", 100)
    plan_row = preview.plan_row

    def failing(**kwargs: Any) -> Any:
        if kwargs["values"].get("name") == "Breaks":
            raise RuntimeError("unexpected")
        return plan_row(**kwargs)

    monkeypatch.setattr(preview, "plan_row", failing)
    rows = "".join(f"it-{n},{'Breaks' if n == 250 else 'Mug'}\n" for n in range(400))
    job = make_job(f"id,name\n{rows}".encode())
    assert job.state == JobState.INVALID
    assert job.file_errors == [
        "The file could not be read to the end (something in it the console does not "
        "expect); nothing was imported. Check it is a CSV or JSON Lines file of items."
    ]
    assert not BulkRow.objects.filter(job=job).exists()


_JSON_VALUES: list[Any] = [
    {"name": "Mug ☕", "price": 12.5, "stock": 3, "in_stock": True, "note": None},
    {"a": [1, -0.0, 1e20, 0.1, float("inf"), float("nan")], "b": {"c": 'quo"te\\\n\t\x01'}},
    ["The header has no id column", {"line": 7, "column": "price"}],
    [],
    {},
    'quo"te\\ é',
    12,
    None,
]


@pytest.mark.parametrize("value", _JSON_VALUES)
def test_a_rows_json_is_written_as_the_reference_writes_it(value: Any) -> None:
    # The pipelined planner encodes before/kept/errors and the payload with the encoders made
    # once; the reference uses JSONEncoder.encode and canonical_json.
    assert services._encode_acyclic(value) == json.dumps(value, ensure_ascii=False)
    assert canonical_json_decoded(value) == canonical_json(value)


def test_a_value_json_cannot_hold_is_refused_as_the_reference_refuses_it() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        services._encode_acyclic({"a": {1, 2}})
