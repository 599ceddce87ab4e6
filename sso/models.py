from django.conf import settings
from django.db import models


class SsoIdentity(models.Model):
    """The console user an identity provider's subject signs in as (matched on issuer and
    `sub`, never on an email address, which an IdP may give to someone else later)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
