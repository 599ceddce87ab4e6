from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class MfaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mfa"
    verbose_name = "Second factor"

    def ready(self) -> None:
        from django.conf import settings

        from console.roles import Role
        from mfa.appliers import register

        register()

        # A misspelt role would silently need no second factor of anyone: refuse to start.
        unknown = set(settings.MFA_REQUIRED_ROLES) - {role.value for role in Role}
        if unknown:
            raise ImproperlyConfigured(
                f"MFA_REQUIRED_ROLES names no role: {', '.join(sorted(unknown))} "
                f"(roles: {', '.join(role.value for role in Role)})"
            )
