"""Boundary hooks that call the audit service explicitly (never model signals)."""

from typing import Any

from django.apps import AppConfig
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from console.audit import events
from console.audit.context import current_origin
from console.audit.db import runtime_privileges_grant
from console.audit.services import audit_append
from console.net import client_ip


def on_user_logged_in(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    audit_append(
        actor=user, action=events.AUTH_SIGN_IN, resource_type="user", resource_id=str(user.pk)
    )


def on_user_logged_out(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser | None, **kwargs: Any
) -> None:
    if user is not None:
        audit_append(
            actor=user, action=events.AUTH_SIGN_OUT, resource_type="user", resource_id=str(user.pk)
        )


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Counted per source; only a source's first failure in a window is an entry of its own
    # (console/signin.py), so a flood cannot grow the trail or hold the chain lock.
    from console.signin import signin_failure_audit

    source = client_ip(request) if request is not None else current_origin().ip
    signin_failure_audit(source=source, username=str(credentials.get("username", "")))


def on_post_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    runtime_privileges_grant(using=using)
