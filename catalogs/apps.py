from django.apps import AppConfig

from console.metrics.sources import metrics_source_register


class CatalogsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "catalogs"

    def ready(self) -> None:
        # Imported once the app registry is ready: the appliers load models at import.
        from catalogs.appliers import register
        from catalogs.metrics import catalog_metrics
        from catalogs.schema_appliers import register as register_schema

        register()
        register_schema()
        metrics_source_register("catalogs", catalog_metrics)
