"""The catalog mirror's gauges on /metrics, read from PostgreSQL at scrape time (registered
with console/metrics/sources.py from this app's ready())."""

from collections.abc import Iterator

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from catalogs.models import ACTIVE_SYNC_STATES, Catalog, CatalogSync


def catalog_metrics() -> Iterator[Metric]:
    now = timezone.now()
    lag = GaugeMetricFamily(
        "console_catalog_sync_age_seconds",
        "Seconds since the end of each catalog's last full pass over its items (catalogs "
        "never fully synced are counted in console_catalog_never_synced instead).",
        # Each workspace has its own catalogs, often under the same names.
        labels=["workspace", "catalog"],
    )
    never = 0
    for workspace, name, last in Catalog.objects.filter(present_in_braze=True).values_list(
        "workspace", "name", "last_full_sync_at"
    ):
        if last is None:
            never += 1
        else:
            lag.add_metric([workspace, name], max(0.0, (now - last).total_seconds()))
    yield lag
    yield GaugeMetricFamily(
        "console_catalog_never_synced",
        "Catalogs Braze lists whose items were never mirrored in full.",
        value=float(never),
    )
    syncs = GaugeMetricFamily(
        "console_catalog_syncs", "Catalog syncs queued, running or waiting.", labels=["state"]
    )
    counts = dict(
        CatalogSync.objects.filter(state__in=ACTIVE_SYNC_STATES)
        .values_list("state")
        .annotate(n=Count("id"))
    )
    for state in ACTIVE_SYNC_STATES:
        syncs.add_metric([state.value], float(counts.get(state.value, 0)))
    yield syncs
