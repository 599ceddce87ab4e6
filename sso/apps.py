from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = "Single sign-on"

    def ready(self) -> None:
        from django.contrib.auth import signals as auth_signals

        from sso import provider, signals

        auth_signals.user_logged_in.connect(signals.on_user_logged_in, dispatch_uid="sso_in")
        # The discovery document is read once at start and kept (provider.py).
        provider.provider_metadata_warm()
