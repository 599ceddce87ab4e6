from django.apps import AppConfig


class TemplatesAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "templates_app"
    verbose_name = "Content"

    def ready(self) -> None:
        # Imported once the app registry is ready: the appliers load models at import.
        from templates_app.appliers import register

        register()
