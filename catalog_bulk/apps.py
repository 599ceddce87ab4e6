from django.apps import AppConfig

from console.home.sources import JobSource, home_jobs_register
from console.metrics.sources import metrics_source_register


class CatalogBulkConfig(AppConfig):
    """Bulk item jobs: an uploaded file of catalog items, previewed, approved once, and sent
    to Braze in batches. Celery finds ``catalog_bulk.tasks`` by autodiscovery."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "catalog_bulk"
    verbose_name = "Bulk catalog item jobs"

    def ready(self) -> None:
        # Imported here, not at the top: the applier reaches models, which load after apps.
        from catalog_bulk.appliers import register
        from catalog_bulk.metrics import bulk_metrics
        from catalog_bulk.selectors import bulk_jobs_open_of, bulk_jobs_paused

        register()
        metrics_source_register("bulk", bulk_metrics)
        home_jobs_register(JobSource(open_of=bulk_jobs_open_of, paused=bulk_jobs_paused))
