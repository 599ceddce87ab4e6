from django.apps import AppConfig


class UsersAdminConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "users_admin"
    verbose_name = "Users"

    def ready(self) -> None:
        # Imported once the app registry is ready: the appliers load models at import.
        from users_admin.appliers import register

        register()
