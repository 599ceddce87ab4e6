# The part of mozilla-django-oidc (untyped) the console uses, so sso/ is checked with
# --strict's flags. A setting is whatever settings.py holds, as django.conf.settings types it.
from typing import Any

def import_from_settings(attr: str, *args: Any) -> Any: ...
