"""Bulk rows with object, array and geolocation values, and `$add`/`$remove` in update rows."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog_bulk.models import BulkJob, BulkRow, JobState, RowOp
from catalog_bulk.preview import plan_row
from catalog_bulk.readback import differences
from catalog_bulk.services import bulk_job_parse, bulk_job_upload
from catalogs.models import Catalog, CatalogItem
from catalogs.services import catalog_mirror_refresh
from console.braze.client import BrazeClient
from tests.catalog_bulk.helpers import approve, drain, sandbox_items
from tests.factories import CatalogFactory, catalog_item_create
from tests.fixtures.sandbox import SandboxHandle

FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "details", "type": "object"},
    {"name": "tags", "type": "array"},
    {"name": "location", "type": "geolocation"},
    {"name": "opened_at", "type": "time"},
]
TYPES = {f["name"]: f["type"] for f in FIELDS}


@pytest.fixture
def venues(db: None) -> Catalog:
    catalog: Catalog = CatalogFactory.create(name="venues", fields=FIELDS)
    catalog_item_create(catalog, "v1", name="Hall", tags=["red", "blue"])
    return catalog


def _job(catalog: Catalog, editor: User, content: bytes, operation: str, name: str) -> BulkJob:
    upload = SimpleUploadedFile(name, content)
    job = bulk_job_upload(actor=editor, catalog=catalog, operation=operation, upload=upload)
    return bulk_job_parse(job_id=job.pk)


def _rows(job: BulkJob) -> dict[str, BulkRow]:
    return {row.item_id: row for row in BulkRow.objects.filter(job=job)}


CSV = (
    b"id,name,details,tags,location,opened_at\n"
    b'v2,Barn,"{""floor"": 1}","[""a"", ""b""]","[-0.12, 51.5]",2026-03-01T09:30:00Z\n'
    b'v3,Shed,,"[""a"", 1]","[-200, 51.5]",\n'
)
JSONL = (
    b'{"id": "v2", "name": "Barn", "details": {"floor": 1}, "tags": ["a", "b"],'
    b' "location": [-0.12, 51.5], "opened_at": "2026-03-01T09:30:00Z"}\n'
    b'{"id": "v3", "name": "Shed", "tags": ["a", 1], "location": [-200, 51.5]}\n'
)


@pytest.mark.parametrize(("content", "name"), [(CSV, "v.csv"), (JSONL, "v.jsonl")])
def test_rows_with_the_new_types_validate_and_preview(
    venues: Catalog, editor: User, content: bytes, name: str
) -> None:
    job = _job(venues, editor, content, "upsert", name)
    rows = _rows(job)
    assert rows["v2"].op == RowOp.CREATE
    assert rows["v2"].payload == {
        "name": "Barn",
        "details": {"floor": 1},
        "tags": ["a", "b"],
        "location": [-0.12, 51.5],
        "opened_at": "2026-03-01T09:30:00.000+00:00",
    }
    assert rows["v3"].op == RowOp.ERROR
    errors = " ".join(rows["v3"].errors)
    assert "list of text values" in errors
    assert "Longitude must be between -180 and 180" in errors


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b'id,tags\nv1,"{""$add"": [""green""], ""$remove"": [""blue""]}"\n', "ops.csv"),
        (b'{"id": "v1", "tags": {"$add": ["green"], "$remove": ["blue"]}}\n', "ops.jsonl"),
    ],
)
def test_update_rows_carry_add_and_remove(
    venues: Catalog, editor: User, content: bytes, name: str
) -> None:
    job = _job(venues, editor, content, "update", name)
    row = _rows(job)["v1"]
    assert row.op == RowOp.UPDATE, row.errors
    assert row.payload == {"tags": {"$add": ["green"], "$remove": ["blue"]}}
    assert row.before == {"tags": ["red", "blue"]}


def test_operators_that_change_nothing_are_unchanged() -> None:
    planned = plan_row(
        operation="update",
        values={"tags": {"$add": ["red"], "$remove": ["gone"]}},
        current={"tags": ["red", "blue"]},
        types=TYPES,
    )
    assert planned.kind == "unchanged"


def test_operators_outside_an_update_are_refused(venues: Catalog, editor: User) -> None:
    content = b'{"id": "v1", "tags": {"$add": ["green"]}}\n'
    job = _job(venues, editor, content, "upsert", "ops.jsonl")
    row = _rows(job)["v1"]
    assert row.op == RowOp.ERROR
    assert "use them in an update only" in " ".join(row.errors)


def test_a_value_both_added_and_removed_is_refused(venues: Catalog, editor: User) -> None:
    content = b'{"id": "v1", "tags": {"$add": ["x"], "$remove": ["x"]}}\n'
    job = _job(venues, editor, content, "update", "ops.jsonl")
    assert "both added and removed" in " ".join(_rows(job)["v1"].errors)


def test_a_time_in_another_spelling_is_unchanged_in_the_preview() -> None:
    planned = plan_row(
        operation="update",
        values={"opened_at": "2026-03-01T09:30:00.000+00:00"},
        current={"opened_at": "2026-03-01T09:30:00.000Z"},
        types=TYPES,
    )
    assert planned.kind == "unchanged"


def test_the_read_back_checks_operators_against_what_braze_holds() -> None:
    sent = {"tags": {"$add": ["green"], "$remove": ["blue"]}}
    fine = differences(op=RowOp.UPDATE, sent=sent, found={"tags": ["x", "green"]}, types=TYPES)
    assert fine == []
    off = differences(op=RowOp.UPDATE, sent=sent, found={"tags": ["blue", "green"]}, types=TYPES)
    assert [d["field"] for d in off] == ["tags"]


@pytest.mark.one_profile("current")
def test_a_bulk_update_with_operators_reaches_braze_and_the_mirror(
    db: None, braze: SandboxHandle, editor: User, reviewer: User
) -> None:
    from console.braze import get_client

    client: BrazeClient = get_client(lane="background", max_wait=5.0)
    fields = [f for f in FIELDS if f["name"] in ("id", "name", "tags", "location")]
    client.catalog_create(name="venues", description="", fields=fields)
    seed: list[dict[str, Any]] = [
        {"id": f"v{i}", "name": f"V{i}", "tags": ["red", "blue"]} for i in range(3)
    ]
    with braze.client() as http:
        assert http.post("/catalogs/venues/items", json={"items": seed}).status_code == 202
    braze.admin.flush_async()
    catalog_mirror_refresh(client=client)
    catalog = Catalog.objects.get(name="venues")
    for item in seed:
        catalog_item_create(catalog, item["id"], name=item["name"], tags=item["tags"])
    lines = [
        {"id": "v0", "tags": {"$add": ["green"], "$remove": ["blue"]}},
        {"id": "v1", "tags": {"$add": ["green"]}, "location": [2.35, 48.86]},
        {"id": "v2", "tags": {"$remove": ["red"]}},
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    job = _job(catalog, editor, content, "update", "ops.jsonl")
    assert job.state == JobState.READY, job.file_errors

    job = drain(approve(job, editor=editor, reviewer=reviewer))

    held: dict[str, Any] = sandbox_items(braze, "venues")
    assert [held[f"v{i}"]["tags"] for i in range(3)] == [
        ["red", "green"],
        ["red", "blue", "green"],
        ["blue"],
    ]
    assert held["v1"]["location"] == [2.35, 48.86]
    mirror = {r.item_id: r.data for r in CatalogItem.objects.filter(catalog=catalog)}
    assert [mirror[f"v{i}"]["tags"] for i in range(3)] == [
        ["red", "green"],
        ["red", "blue", "green"],
        ["blue"],
    ]
