"""The change-request applier for bulk item jobs.

Applying an approved bulk job sends nothing inline: it cuts the approved plan into batches
and starts the senders (services.bulk_job_start); the senders then report per item. A
request whose payload has "retry" asks to send a job's failed batches again although some of
their items changed in the mirror since the preview (services.bulk_job_retry_approved).
"""

from __future__ import annotations

from typing import Any

from catalog_bulk.models import BulkBatch, BulkJob
from catalog_bulk.selectors import bulk_job_retry_summary, bulk_job_review_summary
from catalog_bulk.services import (
    bulk_job_retry_approved,
    bulk_job_retry_not_approved,
    bulk_job_start,
    bulk_jobs_close_unapproved,
)
from catalog_bulk.states import BULK_RESOURCE, PIPELINE_ACTOR
from console.changes.resource_types import Identifiers, ResourceType, resource_type_register


class CatalogBulkApplier:
    def read_current(self, identifier: str) -> dict[str, Any] | None:
        # The plan was diffed against the mirror when it was previewed; its hash in the
        # payload is what the approval covers, so there is no other state to compare.
        return None

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action != "bulk":
            raise ValueError(f"bulk jobs have no {action!r} action")
        if "retry" in payload:
            return bulk_job_retry_approved(payload=payload, actor=PIPELINE_ACTOR)
        return bulk_job_start(
            job_id=int(payload["job"]), plan_hash=str(payload["plan_hash"]), actor=PIPELINE_ACTOR
        )

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        if "retry" in payload:
            return BulkJob.objects.filter(
                pk=int(payload["job"]), retry_round_sent__gte=int(payload["retry"])
            ).exists()
        # Started once already: a retried apply task must not cut the plan again.
        return BulkBatch.objects.filter(job_id=int(payload["job"])).exists()

    def closed(self, *, change_request_id: int, actor: Any) -> None:
        """A rejected or withdrawn job can never start: close it now, not at the sweep.
        A rejected or withdrawn retry leaves its batches failed, for a person to ask again."""
        bulk_jobs_close_unapproved(change_request_id=change_request_id, actor=actor)
        bulk_job_retry_not_approved(change_request_id=change_request_id, actor=actor)

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        if "retry" in payload:
            return bulk_job_retry_summary(payload=payload)
        return bulk_job_review_summary(job_id=int(payload["job"]), payload=payload)

    def review_notes(self, cr: Any) -> list[str]:
        if "retry" not in cr.payload:
            return []
        return [
            f"Bulk job #{cr.payload['job']} was approved before these values changed in the "
            "mirror (an edit in Braze's dashboard, or a newer job). Approving sends its failed "
            "batches again, and the values below become what the job sends, replacing the "
            "ones Braze holds now."
        ]


def register() -> None:
    applier = CatalogBulkApplier()
    resource_type_register(
        ResourceType(
            key=BULK_RESOURCE,
            label="Bulk catalog items",
            applier=applier,
            # A job, and a request to send a job's failed batches again (most specific first).
            identifiers=Identifiers("{catalog}/bulk-{job}/retry-{round}", "{catalog}/bulk-{job}"),
            on_close=applier.closed,
            review_notes=applier.review_notes,
            # An approver may let a job use the whole rate limit instead of background
            # work's share.
            full_rate_limit=True,
        )
    )
