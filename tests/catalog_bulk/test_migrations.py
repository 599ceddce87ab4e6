"""The bulk models moved app in state only: both a fresh database and one at the old head
migrate, and the rows stay where they were."""

from io import StringIO

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog_bulk.models import BulkJob, BulkRow
from tests.catalog_bulk.conftest import MakeJob

OLD_CATALOGS = ("catalogs", "0006_bulkjob_details_removed_at")
OLD_HEAD = [OLD_CATALOGS, ("catalog_bulk", None)]


def test_the_models_and_the_migrations_agree(db: None) -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 on a change
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_database_at_the_old_head_migrates_and_keeps_its_jobs() -> None:
    executor = MigrationExecutor(connection)
    heads = executor.loader.graph.leaf_nodes()
    bulk_type = ContentType.objects.get_for_model(BulkJob)
    executor.migrate(OLD_HEAD)
    try:
        old = MigrationExecutor(connection).loader.project_state(OLD_CATALOGS).apps
        assert ContentType.objects.get(pk=bulk_type.pk).app_label == "catalogs"
        user = old.get_model("auth", "User").objects.create(username="old-head")
        catalog = old.get_model("catalogs", "Catalog").objects.create(name="old-head")
        job = old.get_model("catalogs", "BulkJob").objects.create(
            catalog=catalog,
            operation="upsert",
            file_name="f.csv",
            file_path="",
            file_format="csv",
            created_by=user,
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(heads)
    assert BulkJob.objects.get(pk=job.pk).catalog.name == "old-head"
    moved = ContentType.objects.get(pk=bulk_type.pk)
    assert (moved.app_label, moved.model) == ("catalog_bulk", "bulkjob")


def test_a_jobs_rows_are_deleted_with_it_though_the_database_does_not_constrain_them(
    make_job: MakeJob,
) -> None:
    job = make_job(b"id,name\nsku-9,Bowl\nsku-1,Mug\n")
    other = make_job(b"id,name\nsku-8,Plate\n")
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, BulkRow._meta.db_table)
    assert not [c for c in constraints.values() if c["foreign_key"] == ("catalogs_bulkjob", "id")]
    assert BulkRow.objects.filter(job=job).count() == 2
    job.delete()
    assert not BulkRow.objects.filter(job_id=job.pk).exists()
    assert BulkRow.objects.filter(job=other).count() == 1
