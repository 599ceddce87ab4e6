"""Boundary hooks that call the audit service explicitly (never model signals)."""

from typing import Any

from django.apps import AppConfig
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from console.audit.db import runtime_privileges_grant
from console.audit.services import ANONYMOUS, Outcome, audit_append


def on_user_logged_in(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    audit_append(actor=user, action="auth.sign_in", resource_type="user", resource_id=str(user.pk))


def on_user_logged_out(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser | None, **kwargs: Any
) -> None:
    if user is not None:
        audit_append(
            actor=user, action="auth.sign_out", resource_type="user", resource_id=str(user.pk)
        )


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # The attempted username may be someone's email address: keep it erasable. The
    # request's origin is already set by AuditRequestMiddleware.
    username = str(credentials.get("username", ""))[:150]
    audit_append(
        actor=ANONYMOUS,
        action="auth.sign_in_failed",
        outcome=Outcome.FAILURE,
        personal={"username": username},
    )


def on_post_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    runtime_privileges_grant(using=using)
