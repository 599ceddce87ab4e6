from django.apps import AppConfig


class BundlesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "bundles"
    verbose_name = "Content bundles"

    def ready(self) -> None:
        # Imported once the app registry is ready: the applier loads models at import.
        from bundles.appliers import register

        register()
