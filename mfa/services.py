"""Writes of the second factor. Each enrolment, removal, reset, recovery-code use and failed
attempt is an audit entry written in the transaction of the change it records."""

import hashlib
import secrets
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.audit import events
from console.audit.services import Outcome, audit_append
from console.changes.models import ChangeAction, ChangeRequest
from console.changes.services import change_request_propose
from console.signin import signin_failure_count
from mfa import passkeys
from mfa.identifiers import RESET_RESOURCE_TYPE
from mfa.models import PasskeyDevice, RecoveryCode, RecoveryCodeDevice
from mfa.selectors import (
    demo_totp_secret,
    factor_count,
    factors_snapshot,
    second_factor_required,
)


class Kind(StrEnum):
    TOTP = "totp"
    PASSKEY = "passkey"
    RECOVERY = "recovery"


class SecondFactorError(Exception):
    """A refusal to show the person as it is."""


LAST_FACTOR_MESSAGE = (
    "Your roles need a second factor: add another authenticator app or passkey before "
    "removing this one."
)
# 16 characters of 31 unambiguous ones (about 79 bits): a salted SHA-256 is then enough to
# keep them from being recovered from a copy of the database.
_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_CODE_LENGTH = 16


def _audit(
    *,
    actor: AbstractBaseUser,
    user: AbstractBaseUser,
    action: str,
    data: dict[str, Any],
    outcome: str = Outcome.SUCCESS,
) -> None:
    audit_append(
        actor=actor,
        action=action,
        outcome=outcome,
        resource_type="user",
        resource_id=str(user.pk),
        data=data,
    )


# --- enrolment -------------------------------------------------------------------------------


def totp_device_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """The person's authenticator app being set up (unconfirmed until a code from it arrives)."""
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(
            user_id=user.pk, name="Authenticator app", confirmed=False
        )
    return device


def totp_device_confirm(*, user: AbstractBaseUser, token: str) -> TOTPDevice | None:
    """Confirm the app being set up with a code it shows; None (and audited) if it is wrong."""
    with transaction.atomic(durable=True):
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, confirmed=False)
            .order_by("pk")
            .first()
        )
        if device is None or not device.verify_token(token.strip()):
            _failure_record(user=user, kind=Kind.TOTP, reason="enrolment code refused")
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        _audit(
            actor=user,
            user=user,
            action=events.MFA_DEVICE_ADDED,
            data={"kind": Kind.TOTP.value, "name": device.name},
        )
    return device


def passkey_device_add(
    *, user: AbstractBaseUser, credential: passkeys.NewCredential, name: str
) -> PasskeyDevice:
    with transaction.atomic(durable=True):
        device = PasskeyDevice.objects.create(
            user_id=user.pk,
            name=(name.strip() or "Passkey")[:64],
            credential_id=credential.credential_id,
            public_key=credential.public_key,
            sign_count=credential.sign_count,
        )
        _audit(
            actor=user,
            user=user,
            action=events.MFA_DEVICE_ADDED,
            data={"kind": Kind.PASSKEY.value, "name": device.name},
        )
    return device


def second_factor_failure_record(*, user: AbstractBaseUser, kind: Kind, reason: str) -> None:
    """An attempt refused before any device was asked (no challenge to answer, an empty or
    malformed answer, a passkey that would not register)."""
    with transaction.atomic(durable=True):
        _failure_record(user=user, kind=kind, reason=reason)


def device_remove(*, actor: AbstractBaseUser, device: TOTPDevice | PasskeyDevice) -> None:
    """Remove an app or passkey; refused if it is the last and the person's roles need one."""
    with transaction.atomic(durable=True):
        user = User.objects.select_for_update().get(pk=device.user_id)
        if second_factor_required(user=user) and factor_count(user=user) <= 1:
            raise SecondFactorError(LAST_FACTOR_MESSAGE)
        kind = Kind.TOTP if isinstance(device, TOTPDevice) else Kind.PASSKEY
        name = device.name
        device.delete()
        _audit(
            actor=actor,
            user=user,
            action=events.MFA_DEVICE_REMOVED,
            data={"kind": kind.value, "name": name},
        )


def devices_reset_propose(*, actor: AbstractBaseUser, user: User) -> ChangeRequest:
    """An Admin asks to remove every factor of someone else (a lost phone or key); another
    Admin approves (mfa/appliers.py says why), then the person enrols anew at their next
    sign-in, which still needs their password."""
    if actor.pk == user.pk:
        raise SecondFactorError("Manage your own second factor on your security page.")
    current = factors_snapshot(user_id=user.pk)
    if not current or not current["factors"]:
        raise SecondFactorError(f"{user.get_username()} has no second factor to reset.")
    return change_request_propose(
        actor=actor,
        resource_type=RESET_RESOURCE_TYPE,
        identifier=str(user.pk),
        action=ChangeAction.UPDATE,
        payload={"factors": []},
        base_snapshot=current,
        title=f"Reset {user.get_username()}'s second factor"[:200],
    )


def devices_reset_apply_approved(
    *, actor: AbstractBaseUser, change_request: ChangeRequest
) -> dict[str, Any]:
    """Remove the factors an approved reset names (run by the apply step, in its
    transaction, after its conflict check; `actor` is the approving Admin)."""
    user = User.objects.get(pk=int(change_request.identifier))
    removed = {
        kind.value: model.objects.filter(user_id=user.pk).delete()[1].get(model._meta.label, 0)
        for kind, model in (
            (Kind.TOTP, TOTPDevice),
            (Kind.PASSKEY, PasskeyDevice),
            (Kind.RECOVERY, RecoveryCodeDevice),
        )
    }
    audit_append(
        actor=actor,
        action=events.MFA_DEVICES_RESET,
        resource_type="user",
        resource_id=str(user.pk),
        change_request_id=change_request.pk,
        data={"removed": removed, "proposed_by": change_request.author_id},
    )
    return {"removed": removed}


def demo_second_factor_set(*, user: User) -> None:
    """Development only (demo users, `DemoAccountExtra.prepare`): the demo authenticator for
    an account whose roles need a second factor."""
    if second_factor_required(user=user):
        demo_totp_device_set(user=user)


def demo_totp_device_set(*, user: AbstractBaseUser) -> None:
    """Development only (demo users): an authenticator app whose key follows from the
    username (`selectors.demo_totp_key`), so it stays the same across `make run`s."""
    TOTPDevice.objects.filter(user_id=user.pk).delete()
    TOTPDevice.objects.create(
        user_id=user.pk,
        name="Demo authenticator",
        key=demo_totp_secret(username=user.get_username()).hex(),
        confirmed=True,
    )


# --- recovery codes --------------------------------------------------------------------------


def _normal_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{_normal_code(code)}".encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def recovery_codes_issue(*, user: AbstractBaseUser) -> list[str]:
    """A new set of codes replacing the old one. The codes are returned to be shown once; only
    their salted digests are kept."""
    with transaction.atomic(durable=True):
        RecoveryCodeDevice.objects.filter(user_id=user.pk).delete()
        salt = secrets.token_hex(16)
        device = RecoveryCodeDevice.objects.create(
            user_id=user.pk, name="Recovery codes", salt=salt
        )
        codes = [_new_code() for _ in range(settings.MFA_RECOVERY_CODES)]
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, digest=_digest(salt, code)) for code in codes
        )
        _audit(
            actor=user,
            user=user,
            action=events.MFA_RECOVERY_CODES_ISSUED,
            data={"count": len(codes)},
        )
    return codes


# --- verification ----------------------------------------------------------------------------


def _failure_record(*, user: AbstractBaseUser, kind: Kind, reason: str) -> None:
    audit_append(
        actor=user,
        action=events.MFA_FAILED,
        outcome=Outcome.FAILURE,
        resource_type="user",
        resource_id=str(user.pk),
        data={"kind": kind.value, "reason": reason},
    )


def _looks_like_totp(code: str) -> bool:
    return code.isdigit() and len(code) <= 8


def second_factor_verify_code(*, user: AbstractBaseUser, code: str) -> Device | None:
    """A code from the person's authenticator app, or one of their recovery codes (spent by
    this). None, audited, when it is wrong, already used, or the device is throttled."""
    code = "".join(code.split())
    with transaction.atomic(durable=True):
        if _looks_like_totp(code):
            throttled = False
            for device in TOTPDevice.objects.select_for_update().filter(
                user_id=user.pk, confirmed=True
            ):
                throttled = throttled or not device.verify_is_allowed()[0]
                # django-otp refuses a code at or before the last one accepted (a replay) and,
                # after failures, any code until its back-off has passed.
                if device.verify_token(code):
                    return device
            reason = "throttled" if throttled else "wrong or reused code"
            _failure_record(user=user, kind=Kind.TOTP, reason=reason)
            return None
        recovery = RecoveryCodeDevice.objects.select_for_update().filter(user_id=user.pk).first()
        if recovery is not None and code:
            spent = RecoveryCode.objects.filter(
                device=recovery, digest=_digest(recovery.salt, code), used_at__isnull=True
            ).update(used_at=timezone.now())
            if spent:
                recovery.set_last_used_timestamp(commit=True)
                left = RecoveryCode.objects.filter(device=recovery, used_at__isnull=True).count()
                _audit(
                    actor=user, user=user, action=events.MFA_RECOVERY_CODE_USED, data={"left": left}
                )
                return recovery
        _failure_record(user=user, kind=Kind.RECOVERY, reason="wrong or used recovery code")
        return None


def passkey_verify(
    *, user: AbstractBaseUser, credential: str, challenge: str, rp: passkeys.RelyingParty
) -> PasskeyDevice | None:
    """The person's passkey that signed `challenge`, its counter moved on; None, audited, if
    the answer does not verify or names a passkey that is not theirs."""
    with transaction.atomic(durable=True):
        try:
            credential_id = passkeys.credential_id_of(credential)
            device = (
                PasskeyDevice.objects.select_for_update()
                .filter(user_id=user.pk, confirmed=True, credential_id=credential_id)
                .first()
            )
            if device is None:
                raise ValueError("not one of this person's passkeys")
            device.sign_count = passkeys.authentication_verify(
                credential=credential, challenge=challenge, rp=rp, device=device
            )
        except (ValueError, KeyError, TypeError, passkeys.WebAuthnException):
            _failure_record(user=user, kind=Kind.PASSKEY, reason="assertion refused")
            return None
        device.last_used_at = timezone.now()
        device.save(update_fields=["sign_count", "last_used_at"])
    return device


def second_factor_failure_count(*, source: str | None) -> None:
    """A failed second step counts against its address as a failed sign-in does."""
    signin_failure_count(source=source)
