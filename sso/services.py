"""Single sign-on writes: the console user of an IdP subject, its roles, and the loud
audit of a break-glass sign-in."""

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.mail import EmailMessage
from django.db import transaction

from console.audit.services import SystemActor, audit_append
from console.roles import Role, forget_cached_roles, roles_ensure_groups, user_roles
from sso.config import roles_from_groups
from sso.models import SsoIdentity

logger = logging.getLogger(__name__)

# Role changes that come from the identity provider name it as their actor.
IDP = SystemActor("identity provider")

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True, slots=True)
class SsoSignIn:
    user: User | None  # None: a first sign-in whose groups grant nothing (no account made)
    roles: frozenset[Role]


def _claim(claims: dict[str, Any], name: str, limit: int) -> str:
    value = claims.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _free_username(claims: dict[str, Any]) -> str:
    base = _claim(claims, "preferred_username", 120) or _claim(claims, "email", 120)
    base = _USERNAME_UNSAFE.sub("-", base) or "sso-user"
    # A local account of the same name (the break-glass Admin, say) is never taken over.
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-sso{n}"
    return candidate


def _roles_set(*, user: User, roles: frozenset[Role]) -> None:
    roles_ensure_groups()
    user.groups.set(Group.objects.filter(name__in=[role.value for role in roles]))
    forget_cached_roles(user)


def sso_user_sync(*, issuer: str, claims: dict[str, Any]) -> SsoSignIn:
    """At every SSO sign-in: the subject's console user (made on the first one) with the roles
    its groups grant now. A change of roles is audited in the same transaction; a person
    whose groups grant nothing loses every role (and is refused by the caller)."""
    subject = _claim(claims, "sub", 255)
    if not subject:
        raise ValueError("an ID token without a subject")
    roles = roles_from_groups(claims.get(settings.OIDC_GROUPS_CLAIM))
    with transaction.atomic(durable=True):
        identity = (
            SsoIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if identity is None:
            if not roles:
                return SsoSignIn(user=None, roles=roles)
            user = User.objects.create_user(
                username=_free_username(claims),
                email=_claim(claims, "email", 254),
                first_name=_claim(claims, "given_name", 150),
                last_name=_claim(claims, "family_name", 150),
            )  # no usable password: this person signs in through the IdP only
            SsoIdentity.objects.create(user=user, issuer=issuer, subject=subject)
            audit_append(
                actor=IDP,
                action="sso.user_created",
                resource_type="user",
                resource_id=str(user.pk),
                personal={"username": user.username, "email": user.email},
            )
        else:
            user = identity.user
        before = user_roles(user) if user.is_active else frozenset()
        if user.is_active and before != roles:
            _roles_set(user=user, roles=roles)
            audit_append(
                actor=IDP,
                action="sso.roles_changed",
                resource_type="user",
                resource_id=str(user.pk),
                data={
                    "before": sorted(r.value for r in before),
                    "after": sorted(r.value for r in roles),
                },
            )
    return SsoSignIn(user=user, roles=roles)


def _break_glass_mail(*, username: str, recipients: list[str], ip: str | None) -> None:
    message = EmailMessage(
        subject=f"Break-glass sign-in to the Braze Content Console: {username}",
        body=(
            f"The break-glass Admin account {username} signed in with a password"
            f" from {ip or 'an unknown address'}.\n\n"
            "Single sign-on is the console's normal way in; if nobody expected this sign-in,"
            " check the audit log (auth.break_glass_sign_in) and change the account's password.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        bcc=recipients,
    )
    try:
        message.send()
    except Exception:  # an unreachable mail server must not undo the (audited) sign-in
        logger.exception("could not email the Admins about a break-glass sign-in")


def sso_break_glass_record(*, user: User, ip: str | None) -> None:
    """A break-glass Admin signed in with a password: an audit entry, and an email to every
    other active Admin once it is committed."""
    audit_append(
        actor=user,
        action="auth.break_glass_sign_in",
        resource_type="user",
        resource_id=str(user.pk),
    )
    recipients = sorted(
        set(
            User.objects.filter(is_active=True, groups__name=Role.ADMIN.value)
            .exclude(pk=user.pk)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )
    if recipients:
        username = user.get_username()
        transaction.on_commit(
            lambda: _break_glass_mail(username=username, recipients=recipients, ip=ip)
        )
