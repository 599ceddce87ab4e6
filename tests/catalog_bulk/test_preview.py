"""The dry run against the mirror: counts, samples, and only changes planned for sending."""

import pytest

from catalog_bulk.models import BulkJob, BulkRow, RowOp
from catalog_bulk.selectors import bulk_job_samples
from tests.catalog_bulk.conftest import MakeJob

pytestmark = pytest.mark.django_db

FILE = b"id,name,price\nsku-1,Mug,10\nsku-2,Cup,6\nsku-3,Bowl,2\nbad id,x,1\n"


def _ops(job: BulkJob) -> dict[str, str]:
    return dict(BulkRow.objects.filter(job=job).values_list("item_id", "op"))


def test_an_upsert_creates_the_missing_updates_the_changed_and_skips_the_same(
    make_job: MakeJob,
) -> None:
    job = make_job(FILE)
    counts = (job.n_create, job.n_update, job.n_unchanged, job.n_delete, job.n_error)
    assert counts == (1, 1, 1, 0, 1)
    assert _ops(job) == {
        "sku-1": "unchanged",
        "sku-2": "update",
        "sku-3": "create",
        "bad id": "error",
    }
    # Delta update: only the changed column of sku-2 is sent.
    assert BulkRow.objects.get(job=job, item_id="sku-2").payload == {"price": 6}
    assert job.items_to_send == 2


def test_create_only_refuses_items_that_exist(make_job: MakeJob) -> None:
    job = make_job(FILE, operation="create")
    row = BulkRow.objects.get(job=job, item_id="sku-2")
    assert row.op == RowOp.ERROR
    assert "item-already-exists" in row.errors[0]
    assert (job.n_create, job.n_error) == (1, 3)


def test_update_only_refuses_items_that_do_not_exist(make_job: MakeJob) -> None:
    job = make_job(FILE, operation="update")
    row = BulkRow.objects.get(job=job, item_id="sku-3")
    assert row.op == RowOp.ERROR
    assert "item-not-found" in row.errors[0]
    assert (job.n_update, job.n_unchanged, job.n_error) == (1, 1, 2)


def test_replace_sends_whole_items_and_skips_identical_ones(make_job: MakeJob) -> None:
    job = make_job(
        b"id,name,price,in_stock\nsku-1,Mug,10,true\nsku-2,Cup,5,\nsku-4,New,1,\n",
        operation="replace",
    )
    assert _ops(job) == {"sku-1": "unchanged", "sku-2": "replace", "sku-4": "replace"}
    assert BulkRow.objects.get(job=job, item_id="sku-2").payload == {"name": "Cup", "price": 5}
    assert (job.n_create, job.n_update, job.n_unchanged) == (1, 1, 1)


def test_delete_sends_ids_only_and_skips_items_not_in_the_mirror(make_job: MakeJob) -> None:
    job = make_job(b"id,name\nsku-1,whatever\nsku-404,\n", operation="delete")
    assert _ops(job) == {"sku-1": "delete", "sku-404": "unchanged"}
    assert (job.n_delete, job.n_unchanged) == (1, 1)


def test_samples_show_the_field_diff_of_each_kind(make_job: MakeJob) -> None:
    job = make_job(FILE)
    samples = {s.item_id: s for s in bulk_job_samples(job=job)}
    assert samples["sku-2"].kind == "update"
    assert samples["sku-2"].diff == [
        {"field": "price", "before": 5, "after": 6, "change": "changed"}
    ]
    assert samples["sku-3"].kind == "create"
    assert {d["field"] for d in samples["sku-3"].diff} == {"name", "price"}


def test_the_plan_hash_changes_with_the_plan(make_job: MakeJob) -> None:
    first, same, other = make_job(FILE), make_job(FILE), make_job(FILE.replace(b"6", b"7"))
    assert first.plan_hash == same.plan_hash != other.plan_hash
