from typing import Any

from django import template
from django.conf import settings

from sso.config import local_passwords_allowed, sso_enabled

register = template.Library()


@register.inclusion_tag("sso/_sign_in_options.html", takes_context=True)
def sso_sign_in_options(context: template.Context) -> dict[str, Any]:
    """The "Sign in with …" button of the login page, when single sign-on is on."""
    return {
        "sso_enabled": sso_enabled(),
        "local_passwords": local_passwords_allowed(),
        "provider_name": settings.OIDC_PROVIDER_NAME,
        "next": context.get("next", ""),
    }
