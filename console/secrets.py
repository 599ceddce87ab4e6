"""The configured secrets, for every place that masks them (audit entries, logs, error reports).

The canary guard (tests/fixtures/canary.py) checks that none of them escapes; a new secret
setting is added here once and is then masked everywhere. Every configured workspace's API key
and SCIM token are secrets too (console/workspaces.py), wherever they were read from.
"""

from django.conf import settings

from console.workspaces import workspace_secrets

SECRET_SETTINGS = (
    "BRAZE_API_KEY",
    "BRAZE_SCIM_TOKEN",
    "SECRET_KEY",
    "AUDIT_CHAIN_KEY",
    "AUDIT_CHECKPOINT_KEY",
    "SENTRY_DSN",
    "EMAIL_HOST_PASSWORD",
    "OIDC_RP_CLIENT_SECRET",
    "NOTIFY_WEBHOOK_SECRET",
)
_MIN_SECRET_LENGTH = 8  # a short value would mask ordinary words


def secret_values() -> list[str]:
    """The configured secrets, longest first (so one inside another is masked whole)."""
    if not settings.configured:
        return []
    values = {str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS}
    values.update(workspace_secrets(getattr(settings, "BRAZE_WORKSPACES_CONFIGURED", ())))
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)
