from django.db import models

from console.changes.models import ChangeRequest


class PartOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    # Not sent: a block it includes, in the same bundle, is not applied yet.
    WAITING = "waiting", "Waiting for what it includes"


class BundlePart(models.Model):
    """The outcome of one part of a bundle change request, as its last apply left it.

    The part itself (what it changes) is in the request's payload, where approvals and the
    audit chain cover it; a row exists once an apply has reached the part.
    """

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="bundle_parts"
    )
    position = models.PositiveIntegerField()  # its index in the payload's parts
    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=300)
    outcome = models.CharField(max_length=10, choices=PartOutcome.choices)
    message = models.TextField(blank=True)
    error_id = models.CharField(max_length=200, blank=True)
    response = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "position"], name="one_outcome_per_bundle_part"
            )
        ]
        ordering = ["change_request", "position"]

    def __str__(self) -> str:
        return f"#{self.change_request_id} part {self.position}: {self.outcome}"
