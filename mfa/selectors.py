"""Reads of the second factor: who needs one, and what each person has enrolled."""

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.roles import Role, user_roles_anywhere
from mfa.models import PasskeyDevice, RecoveryCode


def required_roles() -> frozenset[Role]:
    return frozenset(Role(name) for name in settings.MFA_REQUIRED_ROLES)


def second_factor_required(*, user: AbstractBaseUser) -> bool:
    """Whether a password sign-in of `user` needs a second factor (and one enrolled first):
    they hold a role that requires one, console-wide or in any workspace."""
    return bool(user_roles_anywhere(user) & required_roles())


def factor_count(*, user: AbstractBaseUser) -> int:
    """Authenticator apps and passkeys: recovery codes stand in for them, never alone."""
    return (
        TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).count()
        + PasskeyDevice.objects.filter(user_id=user.pk, confirmed=True).count()
    )


def recovery_codes_left(*, user: AbstractBaseUser) -> int:
    return RecoveryCode.objects.filter(device__user_id=user.pk, used_at__isnull=True).count()


@dataclass(frozen=True, slots=True)
class DeviceRow:
    kind: str  # "totp" or "passkey"
    pk: int
    name: str
    created_at: datetime | None
    last_used_at: datetime | None


def devices_list(*, user: AbstractBaseUser) -> list[DeviceRow]:
    rows = [
        DeviceRow("totp", d.pk, d.name, d.created_at, d.last_used_at)
        for d in TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("pk")
    ]
    rows += [
        DeviceRow("passkey", d.pk, d.name, d.created_at, d.last_used_at)
        for d in PasskeyDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("pk")
    ]
    return rows


def factors_snapshot(*, user_id: int) -> dict[str, list[str]] | None:
    """What a reset would remove (a change request's snapshot); None for no such person."""
    from django.contrib.auth.models import User

    if not User.objects.filter(pk=user_id).exists():
        return None
    factors = [
        f"{'Authenticator app' if row.kind == 'totp' else 'Passkey'}: {row.name}"
        for row in devices_list(user=User(pk=user_id))
    ]
    left = RecoveryCode.objects.filter(device__user_id=user_id, used_at__isnull=True).count()
    if left:
        factors.append(f"Recovery codes: {left} unused")
    return {"factors": factors}


def demo_totp_secret(*, username: str) -> bytes:
    """The demo users' authenticator key: known to anyone who reads this, so only
    `console.services.demo_users_create` (development only) gives it to an account."""
    return hashlib.sha256(f"braze-console-demo-totp:{username}".encode()).digest()[:20]


def demo_second_factor_note(*, username: str) -> str | None:
    """What `seed_demo_users` prints for the account (`DemoAccountExtra.describe`)."""
    key = demo_totp_key(username=username)
    return f"authenticator key: {key}" if key else None


def demo_totp_key(*, username: str) -> str | None:
    """The demo key in base32 (as authenticator apps take it), if the account uses it."""
    secret = demo_totp_secret(username=username)
    if not TOTPDevice.objects.filter(
        user__username=username, key=secret.hex(), confirmed=True
    ).exists():
        return None
    return base64.b32encode(secret).decode()
