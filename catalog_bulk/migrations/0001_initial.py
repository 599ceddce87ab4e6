import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_types(apps, schema_editor, *, source: str, target: str) -> None:
    """Content types (and the permissions on them) follow the models to their new app."""
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label=source, model__in=MODELS).update(app_label=target)


def forwards(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, source="catalogs", target="catalog_bulk")


def backwards(apps, schema_editor) -> None:
    _move_content_types(apps, schema_editor, source="catalog_bulk", target="catalogs")


MODELS = ("bulkjob", "bulkbatch", "bulkrow", "bulkreadback")


class Migration(migrations.Migration):
    """The bulk job models, moved from the catalogs app: state only, the tables exist already
    (catalogs 0002 to 0006 made them; ``Meta.db_table`` keeps their names). catalogs 0007
    then drops the models from that app's state."""

    initial = True

    dependencies = [
        ("catalogs", "0006_bulkjob_details_removed_at"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("console", "0006_change_request_full_rate_limit"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BulkJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "operation",
                            models.CharField(
                                choices=[
                                    ("upsert", "Upsert (create the missing, update the changed)"),
                                    ("create", "Create only"),
                                    ("update", "Update only (the columns given)"),
                                    ("replace", "Replace whole items"),
                                    ("delete", "Delete (ids only)"),
                                ],
                                max_length=10,
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("parsing", "Reading the file"),
                                    ("invalid", "File refused"),
                                    ("ready", "Preview ready"),
                                    ("review", "Waiting for review"),
                                    ("waiting", "Waiting for another job on the same items"),
                                    ("running", "Sending"),
                                    ("paused", "Paused"),
                                    ("done", "Finished"),
                                    ("cancelled", "Cancelled"),
                                ],
                                db_index=True,
                                default="parsing",
                                max_length=10,
                            ),
                        ),
                        ("file_name", models.CharField(max_length=255)),
                        ("file_path", models.CharField(max_length=500)),
                        ("file_size", models.BigIntegerField(default=0)),
                        ("file_format", models.CharField(max_length=5)),
                        ("columns", models.JSONField(default=list)),
                        ("file_errors", models.JSONField(default=list)),
                        ("rows_read", models.PositiveIntegerField(default=0)),
                        ("n_create", models.PositiveIntegerField(default=0)),
                        ("n_update", models.PositiveIntegerField(default=0)),
                        ("n_unchanged", models.PositiveIntegerField(default=0)),
                        ("n_delete", models.PositiveIntegerField(default=0)),
                        ("n_error", models.PositiveIntegerField(default=0)),
                        ("plan_hash", models.CharField(blank=True, max_length=64)),
                        ("parse_seconds", models.FloatField(default=0)),
                        ("retry_round", models.PositiveSmallIntegerField(default=0)),
                        ("retry_round_sent", models.PositiveSmallIntegerField(default=0)),
                        ("last_dispatch_at", models.DateTimeField(blank=True, null=True)),
                        ("error_message", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("parsed_at", models.DateTimeField(blank=True, null=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "readback_state",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("", "Not planned"),
                                    ("scheduled", "Scheduled"),
                                    ("reading", "Reading"),
                                    ("done", "Done"),
                                    ("failed", "Could not read back"),
                                ],
                                default="",
                                max_length=10,
                            ),
                        ),
                        ("readback_due_at", models.DateTimeField(blank=True, null=True)),
                        ("readback_failures", models.PositiveSmallIntegerField(default=0)),
                        ("readback_error", models.TextField(blank=True)),
                        ("readback_finished_at", models.DateTimeField(blank=True, null=True)),
                        ("details_removed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "catalog",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="catalogs.catalog",
                            ),
                        ),
                        (
                            "change_request",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="console.changerequest",
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "retry_request",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="console.changerequest",
                            ),
                        ),
                        (
                            "waiting_for",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="catalog_bulk.bulkjob",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "catalogs_bulkjob",
                        "ordering": ["-id"],
                    },
                ),
                migrations.CreateModel(
                    name="BulkBatch",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("seq", models.PositiveIntegerField()),
                        (
                            "op",
                            models.CharField(
                                choices=[
                                    ("create", "Create"),
                                    ("update", "Update"),
                                    ("replace", "Replace"),
                                    ("delete", "Delete"),
                                    ("unchanged", "Unchanged"),
                                    ("error", "Error"),
                                ],
                                max_length=10,
                            ),
                        ),
                        (
                            "send_as",
                            models.CharField(
                                choices=[
                                    ("create", "Create"),
                                    ("update", "Update"),
                                    ("replace", "Replace"),
                                    ("delete", "Delete"),
                                    ("unchanged", "Unchanged"),
                                    ("error", "Error"),
                                ],
                                max_length=10,
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("in_flight", "In flight"),
                                    ("accepted", "Accepted by Braze"),
                                    ("rejected", "Rejected by Braze"),
                                    ("retry_wait", "Waiting to retry"),
                                    ("in_doubt", "In doubt (will be re-sent)"),
                                    ("split", "Split to isolate a bad item"),
                                    ("failed", "Failed: needs a person"),
                                    ("cancelled", "Cancelled (not sent)"),
                                ],
                                default="pending",
                                max_length=10,
                            ),
                        ),
                        ("item_count", models.PositiveSmallIntegerField()),
                        ("claim_no", models.PositiveIntegerField(default=0)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("resends", models.PositiveSmallIntegerField(default=0)),
                        ("retries", models.PositiveSmallIntegerField(default=0)),
                        ("rate_limited", models.PositiveSmallIntegerField(default=0)),
                        ("lease_until", models.DateTimeField(blank=True, null=True)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("http_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("error_ids", models.CharField(blank=True, max_length=500)),
                        ("error_message", models.TextField(blank=True)),
                        (
                            "parent",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="children",
                                to="catalog_bulk.bulkbatch",
                            ),
                        ),
                        (
                            "job",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="batches",
                                to="catalog_bulk.bulkjob",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "catalogs_bulkbatch",
                        "ordering": ["job", "seq"],
                    },
                ),
                migrations.CreateModel(
                    name="BulkRow",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("line", models.PositiveIntegerField()),
                        ("item_id", models.CharField(max_length=300)),
                        (
                            "op",
                            models.CharField(
                                choices=[
                                    ("create", "Create"),
                                    ("update", "Update"),
                                    ("replace", "Replace"),
                                    ("delete", "Delete"),
                                    ("unchanged", "Unchanged"),
                                    ("error", "Error"),
                                ],
                                max_length=10,
                            ),
                        ),
                        ("payload", models.JSONField(blank=True, null=True)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("errors", models.JSONField(default=list)),
                        ("raw", models.JSONField(blank=True, null=True)),
                        (
                            "outcome",
                            models.CharField(
                                choices=[
                                    ("pending", "Not sent yet"),
                                    ("accepted", "Accepted by Braze"),
                                    ("rejected", "Rejected by Braze"),
                                    ("failed", "Failed: Braze did not answer"),
                                    ("cancelled", "Not sent (cancelled)"),
                                    ("skipped", "Not sent"),
                                ],
                                default="pending",
                                max_length=10,
                            ),
                        ),
                        ("sends", models.PositiveSmallIntegerField(default=0)),
                        ("resends", models.PositiveSmallIntegerField(default=0)),
                        ("outcome_error", models.TextField(blank=True)),
                        (
                            "batch",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="rows",
                                to="catalog_bulk.bulkbatch",
                            ),
                        ),
                        (
                            "job",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="rows",
                                to="catalog_bulk.bulkjob",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "catalogs_bulkrow",
                        "ordering": ["job", "line"],
                    },
                ),
                migrations.CreateModel(
                    name="BulkReadBack",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("item_id", models.CharField(max_length=300)),
                        (
                            "outcome",
                            models.CharField(
                                choices=[
                                    ("pending", "Not read yet"),
                                    ("match", "Matches what was sent"),
                                    ("mismatch", "Differs from what was sent"),
                                    ("error", "Could not be read"),
                                ],
                                default="pending",
                                max_length=10,
                            ),
                        ),
                        ("found", models.JSONField(blank=True, null=True)),
                        ("mismatches", models.JSONField(default=list)),
                        ("error_message", models.TextField(blank=True)),
                        ("read_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "job",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="read_backs",
                                to="catalog_bulk.bulkjob",
                            ),
                        ),
                        (
                            "row",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="catalog_bulk.bulkrow",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "catalogs_bulkreadback",
                        "ordering": ["job", "id"],
                    },
                ),
                migrations.AddIndex(
                    model_name="bulkjob",
                    index=models.Index(
                        condition=models.Q(("readback_state__in", ["scheduled", "reading"])),
                        fields=["readback_due_at"],
                        name="bulk_job_readback_due",
                    ),
                ),
                migrations.AddIndex(
                    model_name="bulkbatch",
                    index=models.Index(
                        condition=models.Q(("state__in", ["pending", "retry_wait", "in_doubt"])),
                        fields=["job", "seq"],
                        name="bulk_batch_claimable",
                    ),
                ),
                migrations.AddIndex(
                    model_name="bulkbatch",
                    index=models.Index(
                        condition=models.Q(("state", "in_flight")),
                        fields=["lease_until"],
                        name="bulk_batch_in_flight",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="bulkbatch",
                    constraint=models.UniqueConstraint(
                        fields=("job", "seq"), name="bulk_batch_unique_seq"
                    ),
                ),
                migrations.AddIndex(
                    model_name="bulkrow",
                    index=models.Index(fields=["job", "line"], name="bulk_row_line"),
                ),
                migrations.AddIndex(
                    model_name="bulkrow",
                    index=models.Index(fields=["job", "item_id"], name="bulk_row_item"),
                ),
                migrations.AddIndex(
                    model_name="bulkrow",
                    index=models.Index(fields=["batch"], name="bulk_row_batch"),
                ),
                migrations.AddConstraint(
                    model_name="bulkreadback",
                    constraint=models.UniqueConstraint(
                        fields=("job", "row"), name="bulk_readback_unique_row"
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
