"""Second-factor devices beside django-otp's TOTP device: passkeys and recovery codes.

Both are django-otp devices, so a session records the one that passed the same way for every
kind (`django_otp.login`), and `devices_for_user` finds them all.
"""

from django.db import models
from django_otp.models import Device, TimestampMixin


class PasskeyDevice(TimestampMixin, Device):
    """A WebAuthn credential. It answers a signed challenge (mfa/passkeys.py), never a typed
    token, so `verify_token` refuses every token."""

    credential_id = models.BinaryField(unique=True)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)

    def verify_token(self, token: object) -> bool:
        return False


class RecoveryCodeDevice(TimestampMixin, Device):
    """A person's current set of recovery codes; each code is kept only as a salted digest."""

    salt = models.CharField(max_length=64)


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="mfa_recovery_code_unique")
        ]

    def __str__(self) -> str:
        return f"Recovery code {self.pk} ({'used' if self.used_at else 'unused'})"
