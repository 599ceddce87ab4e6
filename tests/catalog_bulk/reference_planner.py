"""The parse's reference planner: each chunk diffed and stored before the next is read, a
row at a time through psycopg's ``write_row``, an id seen before looked up when it is met.

``tests/catalog_bulk/test_csv_checker.py`` parses files with it and with the console's
``_PipelinedPlanner``: every stored row, count and the plan hash must agree."""

import json
from typing import Any

from django.db import connection, transaction

from catalog_bulk import preview, services
from catalog_bulk.models import SENT_OPS, BulkJob, BulkRow, RowOp, RowOutcome
from catalogs.models import CatalogItem
from console.audit.hashing import canonical_json


def _loaded(data: Any) -> Any:
    # psycopg returns jsonb decoded unless Django's connection registered text loaders.
    return json.loads(data) if isinstance(data, str) else data


class RowAtATimePlanner(services._ChunkPlanner):
    def _first_line(self, item_id: str) -> int | None:
        if item_id in self.chunk_lines:
            return self.chunk_lines[item_id]
        return (
            BulkRow.objects.filter(job=self.job, item_id=item_id)
            .order_by("line")
            .values_list("line", flat=True)
            .first()
        )

    def _seen_again(self, item_id: str, errors: list[str]) -> None:
        """A row whose id hashes like an earlier one's: an error if it is the same id."""
        first = self._first_line(item_id)
        if first is not None:
            errors.append(services._duplicate(item_id, first))

    def finish(self) -> None:
        """Store what is left once the file has been read."""
        self.flush()

    def close(self) -> None:
        """Nothing is held: each chunk was stored before the next was read."""

    def flush(self) -> None:
        if not self.chunk:
            return
        # A valid id is letters, digits, - and _: one comma-joined text is the cheapest
        # parameter to send (an array of thousands is dumped element by element).
        valid_ids = ",".join([row[1] for row in self.chunk if not row[3]])
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT item_id, data FROM {CatalogItem._meta.db_table}"  # noqa: S608
                " WHERE catalog_id = %s AND item_id = ANY(string_to_array(%s, ','))",
                [self.catalog.pk, valid_ids],
            )
            mirror = {item_id: _loaded(data) for item_id, data in cursor.fetchall()}
        job_id, operation, types = self.job.pk, self.job.operation, self.types
        counts, digest = self.counts, self.digest
        op: str
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.copy(services._COPY_SQL) as copy:
                for line, item_id, values, errors, given in self.chunk:
                    kept = None
                    if errors:
                        op, kind, payload, before = RowOp.ERROR, "error", None, None
                    else:
                        planned = preview.plan_row(
                            operation=operation,
                            values=values,
                            current=mirror.get(item_id),
                            types=types,
                        )
                        op, kind = planned.op, planned.kind
                        sent = planned.payload
                        payload = None if sent is None else canonical_json(sent)
                        before = services._json(planned.before)
                        if planned.error:
                            errors = [planned.error]
                    counts[kind] += 1
                    if op in SENT_OPS:
                        # canonical_json([line, op, item_id, payload]) with the payload's
                        # text encoded once (a sent row's id needs no escaping).
                        digest.update(f'[{line},"{op}","{item_id}",{payload or "null"}]'.encode())
                        outcome = RowOutcome.PENDING
                    else:
                        outcome = RowOutcome.SKIPPED
                    if errors and self.rows_with_values < self.error_rows_with_values:
                        # Past the cap an error row keeps its id and reasons only.
                        self.rows_with_values += 1
                        if not isinstance(given, dict):
                            assert self.checker is not None  # cells come with their checker
                            given = self.checker.values(given)
                        kept = services._encode(self._kept(given))
                    copy.write_row(
                        (
                            job_id,
                            line,
                            item_id,
                            op,
                            payload,
                            before,
                            services._encode(errors) if errors else services._NO_ERRORS,
                            kept,
                            outcome,
                            0,
                            0,
                            "",
                        )
                    )
            BulkJob.objects.filter(pk=self.job.pk).update(rows_read=self.rows_read)
        self.chunk, self.chunk_lines = [], {}
