"""Bulk item jobs: an uploaded file, its validated rows, and the batches that carry them.

PostgreSQL is the record of all this work; the Celery broker only carries hints ("look for
a batch to send"). A batch is committed as in flight, with a lease, before its request
leaves, so a worker killed at any point leaves a row a sweeper can find.

The tables keep the names the catalogs app gave them (``Meta.db_table``): the models' state
moved to this app in migrations, their rows never did.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from console.workspaces import WORKSPACE_KEY_LENGTH, workspace_default_key


class BulkOperation(models.TextChoices):
    UPSERT = "upsert", "Upsert (create the missing, update the changed)"
    CREATE = "create", "Create only"
    UPDATE = "update", "Update only (the columns given)"
    REPLACE = "replace", "Replace whole items"
    DELETE = "delete", "Delete (ids only)"


class JobState(models.TextChoices):
    PARSING = "parsing", "Reading the file"
    INVALID = "invalid", "File refused"
    READY = "ready", "Preview ready"
    REVIEW = "review", "Waiting for review"
    WAITING = "waiting", "Waiting for another job on the same items"
    RUNNING = "running", "Sending"
    PAUSED = "paused", "Paused"
    DONE = "done", "Finished"
    CANCELLED = "cancelled", "Cancelled"


class ReadBackState(models.TextChoices):
    NONE = "", "Not planned"
    SCHEDULED = "scheduled", "Scheduled"
    READING = "reading", "Reading"
    DONE = "done", "Done"
    FAILED = "failed", "Could not read back"


# States in which a job may hold items another job must not touch at the same time.
ACTIVE_JOB_STATES = (JobState.WAITING, JobState.RUNNING, JobState.PAUSED)


class RowOp(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    REPLACE = "replace", "Replace"
    DELETE = "delete", "Delete"
    UNCHANGED = "unchanged", "Unchanged"
    ERROR = "error", "Error"


SENT_OPS = (RowOp.CREATE, RowOp.UPDATE, RowOp.REPLACE, RowOp.DELETE)


# A retry's difference in an item's presence (created or deleted since), not in one field.
ITEM_FIELD = "(item)"


class BatchState(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    ACCEPTED = "accepted", "Accepted by Braze"
    REJECTED = "rejected", "Rejected by Braze"
    RETRY_WAIT = "retry_wait", "Waiting to retry"
    IN_DOUBT = "in_doubt", "In doubt (will be re-sent)"
    SPLIT = "split", "Split to isolate a bad item"
    FAILED = "failed", "Failed: needs a person"
    CANCELLED = "cancelled", "Cancelled (not sent)"


# Batches a sender may claim (when their next attempt is due).
CLAIMABLE_STATES = (BatchState.PENDING, BatchState.RETRY_WAIT, BatchState.IN_DOUBT)
OPEN_BATCH_STATES = (*CLAIMABLE_STATES, BatchState.IN_FLIGHT)


class BulkJob(models.Model):
    # Its catalog's workspace, copied so lists filter without a join.
    workspace = models.CharField(
        max_length=WORKSPACE_KEY_LENGTH, db_index=True, default=workspace_default_key
    )
    catalog = models.ForeignKey("catalogs.Catalog", on_delete=models.PROTECT, related_name="+")
    operation = models.CharField(max_length=10, choices=BulkOperation.choices)
    state = models.CharField(
        max_length=10, choices=JobState.choices, default=JobState.PARSING, db_index=True
    )
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500)  # under MEDIA_ROOT; deleted when parsed
    file_size = models.BigIntegerField(default=0)
    file_format = models.CharField(max_length=5)  # csv, jsonl
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    change_request = models.ForeignKey(
        "console.ChangeRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the file said, once read.
    columns = models.JSONField(default=list)
    # The catalog's field types the rows were checked against: a field deleted and added
    # again with another type since then would make Braze refuse every item naming it.
    field_types = models.JSONField(default=dict, blank=True)
    file_errors = models.JSONField(default=list)
    rows_read = models.PositiveIntegerField(default=0)
    n_create = models.PositiveIntegerField(default=0)
    n_update = models.PositiveIntegerField(default=0)
    n_unchanged = models.PositiveIntegerField(default=0)
    n_delete = models.PositiveIntegerField(default=0)
    n_error = models.PositiveIntegerField(default=0)
    # sha256 of every (line, op, id, payload) to send: the approval covers exactly this plan.
    plan_hash = models.CharField(max_length=64, blank=True)
    parse_seconds = models.FloatField(default=0)
    # "Send failed batches again" when the failed items changed in the mirror since the
    # preview (services.bulk_job_retry_failed): the request for another person's approval,
    # while it is open; the rounds asked for, and the last round sent (the applier's
    # "already applied").
    retry_request = models.ForeignKey(
        "console.ChangeRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retry_round = models.PositiveSmallIntegerField(default=0)
    retry_round_sent = models.PositiveSmallIntegerField(default=0)
    # The job this one waits for (same items), when it cannot start yet.
    waiting_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Round robin: the sender picks the running job served longest ago.
    last_dispatch_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The read-back of a random sample once Braze has had time to apply the job (readback.py).
    readback_state = models.CharField(
        max_length=10, choices=ReadBackState.choices, default=ReadBackState.NONE, blank=True
    )
    # Scheduled: when it may start. Reading: when the worker's lease runs out.
    readback_due_at = models.DateTimeField(null=True, blank=True)
    readback_failures = models.PositiveSmallIntegerField(default=0)
    readback_error = models.TextField(blank=True)
    readback_finished_at = models.DateTimeField(null=True, blank=True)
    # When retention removed its rows, batches and read-backs (catalog_bulk/retention.py).
    details_removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "catalogs_bulkjob"
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["readback_due_at"],
                condition=models.Q(readback_state__in=["scheduled", "reading"]),
                name="bulk_job_readback_due",
            ),
        ]

    def __str__(self) -> str:
        return f"bulk job {self.pk} ({self.operation} on {self.catalog_id}, {self.state})"

    @property
    def items_to_send(self) -> int:
        return self.n_create + self.n_update + self.n_delete

    @property
    def is_active(self) -> bool:
        return self.state in (JobState.PARSING, *ACTIVE_JOB_STATES)


class BulkBatch(models.Model):
    """At most 50 items sent in one request; its state is the truth about that request."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="batches")
    seq = models.PositiveIntegerField()
    op = models.CharField(max_length=10, choices=RowOp.choices)  # create/update/replace/delete
    # A create whose first send is in doubt is re-sent as a replace of the same full items:
    # a second POST of an item that landed would be refused, a PUT lands the same state.
    send_as = models.CharField(max_length=10, choices=RowOp.choices)
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.PENDING)
    item_count = models.PositiveSmallIntegerField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # Bumped by every claim: an answer is recorded only by the sender holding the last claim.
    claim_no = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)  # sends that reached or may have
    resends = models.PositiveSmallIntegerField(default=0)  # sends after an in-doubt one
    retries = models.PositiveSmallIntegerField(default=0)  # sends after a certain non-apply
    rate_limited = models.PositiveSmallIntegerField(default=0)  # 429s from Braze
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_ids = models.CharField(max_length=500, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        db_table = "catalogs_bulkbatch"
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="bulk_batch_unique_seq")]
        indexes = [
            models.Index(
                fields=["job", "seq"],
                condition=models.Q(state__in=["pending", "retry_wait", "in_doubt"]),
                name="bulk_batch_claimable",
            ),
            models.Index(
                fields=["lease_until"],
                condition=models.Q(state="in_flight"),
                name="bulk_batch_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.job_id}/{self.seq} ({self.op}, {self.state})"


class RowOutcome(models.TextChoices):
    PENDING = "pending", "Not sent yet"
    ACCEPTED = "accepted", "Accepted by Braze"
    REJECTED = "rejected", "Rejected by Braze"
    FAILED = "failed", "Failed: Braze did not answer"
    CANCELLED = "cancelled", "Not sent (cancelled)"
    SKIPPED = "skipped", "Not sent"


class BulkRow(models.Model):
    """One line of the file: what it asks, what the mirror held, and what happened to it."""

    # Every index is paid for by each of a file's rows when it is stored: the job's rows are
    # found through bulk_row_line and bulk_row_item (both lead with job), a batch's through
    # bulk_row_batch, so neither key has an index of its own.
    # No database constraint on the job either: its check is a query per stored row (a
    # third of PostgreSQL's cost of a parse). Rows are written only by their job's parse,
    # which holds the job, and a job's row is never deleted (retention keeps it as the
    # report); Django's CASCADE deletes the rows of a job deleted otherwise.
    job = models.ForeignKey(
        BulkJob, on_delete=models.CASCADE, related_name="rows", db_index=False, db_constraint=False
    )
    line = models.PositiveIntegerField()
    item_id = models.CharField(max_length=300)
    op = models.CharField(max_length=10, choices=RowOp.choices)
    # The item values to send (create/replace: all given; update: the changed columns).
    payload = models.JSONField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)  # the mirror's values, for the diff
    errors = models.JSONField(default=list)
    raw = models.JSONField(null=True, blank=True)  # the line as given, for error rows only
    batch = models.ForeignKey(
        BulkBatch,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rows",
        db_index=False,
    )
    outcome = models.CharField(
        max_length=10, choices=RowOutcome.choices, default=RowOutcome.PENDING
    )
    sends = models.PositiveSmallIntegerField(default=0)
    resends = models.PositiveSmallIntegerField(default=0)
    outcome_error = models.TextField(blank=True)

    class Meta:
        db_table = "catalogs_bulkrow"
        ordering = ["job", "line"]
        indexes = [
            models.Index(fields=["job", "line"], name="bulk_row_line"),
            models.Index(fields=["job", "item_id"], name="bulk_row_item"),
            # Rows get a batch at approval: storing a parsed file adds no entries.
            models.Index(fields=["batch"], name="bulk_row_batch", condition=Q(batch__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"line {self.line} of job {self.job_id}: {self.op} {self.item_id}"


class ReadBackOutcome(models.TextChoices):
    PENDING = "pending", "Not read yet"
    MATCH = "match", "Matches what was sent"
    MISMATCH = "mismatch", "Differs from what was sent"
    ERROR = "error", "Could not be read"


class BulkReadBack(models.Model):
    """One sampled item read back from Braze after the job: what was sent against what is held."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="read_backs")
    row = models.ForeignKey(BulkRow, on_delete=models.CASCADE, related_name="+")
    item_id = models.CharField(max_length=300)
    outcome = models.CharField(
        max_length=10, choices=ReadBackOutcome.choices, default=ReadBackOutcome.PENDING
    )
    found = models.JSONField(null=True, blank=True)  # Braze's item; None when it is not there
    # [{"field", "sent", "found"}] for each difference; "(item)" when the item itself differs.
    mismatches = models.JSONField(default=list)
    error_message = models.TextField(blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "catalogs_bulkreadback"
        ordering = ["job", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row"], name="bulk_readback_unique_row")
        ]

    def __str__(self) -> str:
        return f"read-back of {self.item_id} for job {self.job_id}: {self.outcome}"
