from django.apps import AppConfig


class UsersAdminConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "users_admin"
    verbose_name = "Users"
