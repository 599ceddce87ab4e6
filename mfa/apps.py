from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class MfaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mfa"
    verbose_name = "Second factor"

    def ready(self) -> None:
        # Imported once the app registry is ready: the appliers load models at import.
        from django.conf import settings

        from console.demo_accounts import DemoAccountExtra, demo_account_extra_register
        from console.roles import Role
        from console.signin_steps import signin_step_register
        from mfa.appliers import register
        from mfa.flow import signin_second_step
        from mfa.selectors import demo_second_factor_note
        from mfa.services import demo_second_factor_set

        register()
        signin_step_register(signin_second_step)
        demo_account_extra_register(
            DemoAccountExtra(
                prepare=demo_second_factor_set,
                describe=demo_second_factor_note,
            )
        )

        # A misspelt role would silently need no second factor of anyone: refuse to start.
        unknown = set(settings.MFA_REQUIRED_ROLES) - {role.value for role in Role}
        if unknown:
            raise ImproperlyConfigured(
                f"MFA_REQUIRED_ROLES names no role: {', '.join(sorted(unknown))} "
                f"(roles: {', '.join(role.value for role in Role)})"
            )
