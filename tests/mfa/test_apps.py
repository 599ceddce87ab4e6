import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings


def test_a_misspelt_required_role_stops_the_console_from_starting(settings: Settings) -> None:
    settings.MFA_REQUIRED_ROLES = ["Reviewer", "admin"]
    with pytest.raises(ImproperlyConfigured, match="names no role: admin"):
        apps.get_app_config("mfa").ready()
    settings.MFA_REQUIRED_ROLES = ["Reviewer", "Admin"]
    apps.get_app_config("mfa").ready()
