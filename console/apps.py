from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console"
    verbose_name = "Braze Content Console"

    def ready(self) -> None:
        # Imported once the app registry is ready: these modules load models at import.
        from django.contrib.auth import signals as auth_signals
        from django.db.models.signals import post_migrate

        from console import logs, sessions
        from console.audit import signals
        from console.changes import policy
        from console.metrics import connect_celery_signals

        policy.register()
        logs.connect_request_signals()
        connect_celery_signals()

        auth_signals.user_logged_in.connect(signals.on_user_logged_in, dispatch_uid="audit_in")
        auth_signals.user_logged_in.connect(
            sessions.on_user_logged_in, dispatch_uid="session_limits"
        )
        auth_signals.user_logged_out.connect(signals.on_user_logged_out, dispatch_uid="audit_out")
        auth_signals.user_login_failed.connect(
            signals.on_user_login_failed, dispatch_uid="audit_failed"
        )
        post_migrate.connect(signals.on_post_migrate, sender=self, dispatch_uid="audit_grants")
