"""The bulk jobs' gauges on /metrics, read from PostgreSQL at scrape time (registered with
console/metrics/sources.py from this app's ready())."""

from collections import defaultdict
from collections.abc import Iterator

from django.db.models import Count, F, Q, Sum
from prometheus_client.core import GaugeMetricFamily, Metric

from catalog_bulk.models import ACTIVE_JOB_STATES, BatchState, BulkBatch, BulkJob, JobState


def bulk_metrics() -> Iterator[Metric]:
    jobs = GaugeMetricFamily("console_bulk_jobs", "Bulk jobs by state.", labels=["state"])
    counts = dict(BulkJob.objects.values_list("state").annotate(n=Count("id")))
    for job_state in JobState:
        jobs.add_metric([job_state.value], float(counts.get(job_state.value, 0)))
    yield jobs

    # Items of the jobs still at work (waiting, running, paused), from their batches: a batch
    # carries up to 50 items, so this reads a fiftieth of the rows. Split batches are left out:
    # their items travel again in the halves.
    active = [s.value for s in ACTIVE_JOB_STATES]
    not_split = ~Q(state=BatchState.SPLIT)
    items = (
        BulkBatch.objects.filter(job__state__in=active)
        .values_list("job__state")
        .annotate(
            sent=Sum("item_count", filter=not_split & Q(attempts__gt=0)),
            accepted=Sum("item_count", filter=Q(state=BatchState.ACCEPTED)),
            rejected=Sum("item_count", filter=Q(state=BatchState.REJECTED)),
            failed=Sum("item_count", filter=Q(state=BatchState.FAILED)),
            resent=Sum("item_count", filter=not_split & Q(resends__gt=0)),
            retried=Sum("item_count", filter=not_split & Q(retries__gt=0)),
        )
    )
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    for state, *values in items:
        kinds = ("sent", "accepted", "rejected", "failed", "resent", "retried")
        totals[state] = {kind: value or 0 for kind, value in zip(kinds, values, strict=True)}
    planned = (
        BulkJob.objects.filter(state__in=active)
        .values_list("state")
        .annotate(to_send=Sum(F("n_create") + F("n_update") + F("n_delete")))
    )
    for state, to_send in planned:
        totals[state]["to_send"] = to_send or 0
    family = GaugeMetricFamily(
        "console_bulk_job_items",
        "Items of the jobs waiting, running or paused, by job state: to_send (the plan), sent "
        "(in a request at least once), accepted, rejected and failed (by Braze's last answer), "
        "resent (sent again after an answer that never came) and retried (sent again after "
        "an answer that nothing was applied).",
        labels=["state", "kind"],
    )
    for state in active:
        for kind in ("to_send", "sent", "accepted", "rejected", "failed", "resent", "retried"):
            family.add_metric([state, kind], float(totals.get(state, {}).get(kind, 0)))
    yield family
