"""Authentication backends: OpenID Connect (mozilla-django-oidc, made stricter) and local
passwords (refused, when SSO is on and they are turned off, except for break-glass Admins)."""

import logging
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from requests import RequestException

from console.roles import Role, user_roles, user_with_roles_get
from sso.config import break_glass_usernames, local_passwords_allowed
from sso.provider import ProviderUnavailable, provider_metadata
from sso.services import sso_user_sync

logger = logging.getLogger(__name__)

# Why a sign-in through the provider was refused, kept in the session for the callback view.
REFUSAL = "sso_refusal"
# The refresh token, for re-validating the session with the provider (sso/middleware.py).
REFRESH_TOKEN = "sso_refresh_token"  # noqa: S105 (a session key's name)

_DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def oidc_setting(name: str, *default: Any) -> Any:
    """mozilla-django-oidc's settings, with the provider's endpoints from its discovery
    document instead of four more environment variables."""
    if name in _DISCOVERED:
        return getattr(provider_metadata(), _DISCOVERED[name])
    return import_from_settings(name, *default)


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OidcBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)
    OIDC_RP_IDP_SIGN_KEY = None  # always the provider's JWKS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Every password sign-in and every request of an SSO session instantiates this
        # backend: the provider's endpoints are read when used (below), not here, so
        # neither needs the provider to be up, or SSO to be on.
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return provider_metadata().token_endpoint

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return provider_metadata().userinfo_endpoint

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return provider_metadata().jwks_uri

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return str(settings.OIDC_RP_CLIENT_ID)

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return str(settings.OIDC_RP_CLIENT_SECRET)

    @property
    def OIDC_RP_SIGN_ALGO(self) -> str:
        return str(settings.OIDC_RP_SIGN_ALGO)

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        # Only the callback view passes these: a password form posted with ?code=&state=
        # in its URL must not reach the provider. `username` and `password` are named only
        # so the signature is ModelBackend's; neither is read.
        if request is None or "nonce" not in kwargs or "code_verifier" not in kwargs:
            return None
        self._refresh_token: str | None = None
        try:
            user: User | None = super().authenticate(request, **kwargs)
            if user is not None:
                return user
            reason = "failed"  # the library refused and logged why
        except Refused as refused:
            reason = refused.reason
        except SuspiciousOperation as exc:
            logger.warning("ID token refused: %s", exc)
            reason = "token"
        except (RequestException, ProviderUnavailable) as exc:
            # The token endpoint's answer can hold the request: only the exception's type.
            logger.warning("identity provider error during sign-in: %s", type(exc).__name__)
            reason = "provider"
        request.session[REFUSAL] = reason
        return None

    def _verify_jws(self, payload: bytes | str, key: Any) -> dict[str, Any]:
        """The ID token's signature against the provider's JWKS, by one of the allowed
        algorithms (never HS*: the client secret must not be a way to forge tokens), and its
        issuer, audience and lifetime, within OIDC_CLOCK_SKEW_SECONDS."""
        alg = jwt.get_unverified_header(payload).get("alg")
        if alg not in settings.OIDC_ALGORITHMS:
            raise SuspiciousOperation(f"ID token signed with {alg!r}, not an allowed algorithm")
        client_id = settings.OIDC_RP_CLIENT_ID
        try:
            claims: dict[str, Any] = jwt.decode(
                payload,
                key,
                algorithms=[alg],
                audience=client_id,
                issuer=provider_metadata().issuer,
                leeway=settings.OIDC_CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused ({type(exc).__name__})") from exc
        # OpenID Connect Core 3.1.3.7: with several audiences, we must be the authorised party.
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise SuspiciousOperation("ID token for several audiences without us as azp")
        return claims

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        # The library compares nonces only when the session has one; we always send one.
        if not kwargs.get("nonce"):
            raise SuspiciousOperation("no nonce was sent for this sign-in")
        claims: dict[str, Any] = super().verify_token(token, **kwargs)
        return claims

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        token_info: dict[str, Any] = super().get_token(payload)
        refresh = token_info.get("refresh_token")
        self._refresh_token = refresh if isinstance(refresh, str) else None
        return token_info

    def store_tokens(self, access_token: str, id_token: str) -> None:
        super().store_tokens(access_token, id_token)
        self.request.session[REFRESH_TOKEN] = self._refresh_token

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims, completed by the userinfo endpoint's (whose `sub` must be
        the token's: OpenID Connect Core 5.3.2)."""
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload["sub"]:
            raise SuspiciousOperation("userinfo is about another subject")
        return {**userinfo, **payload}

    def get_user(self, user_id: Any) -> User | None:
        # The signed-in user of every request of an SSO session, with their roles in the
        # same query (mozilla-django-oidc's own reads the user alone).
        return user_with_roles_get(pk=user_id)

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        claims = self.get_userinfo(access_token, id_token, payload)
        signed_in = sso_user_sync(issuer=provider_metadata().issuer, claims=claims)
        if signed_in.user is None or not signed_in.roles:
            raise Refused("no_role")
        if not signed_in.user.is_active:
            raise Refused("inactive")
        return signed_in.user


class LocalPasswordBackend(ModelBackend):
    """Django's password check. With SSO on and SSO_LOCAL_PASSWORDS off, only the
    break-glass accounts (SSO_BREAK_GLASS_USERNAMES) that are Admins still get in."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None or local_passwords_allowed() or password_allowed_for(user):
            return user
        return None

    def get_user(self, user_id: Any) -> User | None:
        # The signed-in user of every request, with their roles in the same query.
        user = user_with_roles_get(pk=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def password_allowed_for(user: AbstractBaseUser) -> bool:
    """Whether `user` may sign in with a password now."""
    if local_passwords_allowed():
        return True
    return user.get_username() in break_glass_usernames() and Role.ADMIN in user_roles(user)


def axes_exempt(request: HttpRequest | None, credentials: dict[str, Any] | None) -> bool:
    """AXES_WHITELIST_CALLABLE: django-axes leaves sign-ins through the provider alone. It
    locks a username at one address; these have no username, so it would lock every SSO
    sign-in from that address (a whole office) after a few people were refused. The
    address throttle (console/signin.py) still counts them."""
    if not credentials:
        return False
    return "code_verifier" in credentials and "username" not in credentials
