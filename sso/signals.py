import time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, User
from django.http import HttpRequest

from console.net import client_ip
from sso.config import PASSWORD, SSO, break_glass_usernames, sso_enabled
from sso.selectors import session_sign_in_method

# When the provider last confirmed this SSO session's account (sso/middleware.py).
VALIDATED_AT = "sso_validated_at"


def on_user_logged_in(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    if request is None or not hasattr(request, "session"):
        return
    method = session_sign_in_method(request)
    if method == SSO:
        request.session[VALIDATED_AT] = time.time()
    elif (
        method == PASSWORD
        and sso_enabled()
        and isinstance(user, User)
        and user.get_username() in break_glass_usernames()
    ):
        from sso.services import sso_break_glass_record  # services import the audit's models

        sso_break_glass_record(user=user, ip=client_ip(request))
