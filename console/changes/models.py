from django.conf import settings
from django.db import models

from console.workspaces import WORKSPACE_KEY_LENGTH, workspace_default_key


class ChangeAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    BULK = "bulk", "Bulk"


class ChangeState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    CONFLICT = "conflict", "Conflict"


OPEN_STATES = frozenset(
    {
        ChangeState.DRAFT,
        ChangeState.PENDING,
        ChangeState.APPROVED,
        ChangeState.FAILED,
        ChangeState.CONFLICT,
    }
)


class ChangeRequest(models.Model):
    """A proposed write to one Braze resource, its review, and what Braze answered."""

    # The workspace it writes to, and whose approval policy and reviewers decide it.
    workspace = models.CharField(
        max_length=WORKSPACE_KEY_LENGTH, db_index=True, default=workspace_default_key
    )
    resource_type = models.CharField(max_length=80)
    identifier = models.CharField(max_length=500)
    action = models.CharField(max_length=10, choices=ChangeAction.choices)
    title = models.CharField(max_length=200)
    payload = models.JSONField()
    # What Braze held when the change was proposed: the apply step refuses to overwrite
    # anything else (None: the resource did not exist).
    base_snapshot = models.JSONField(null=True, blank=True)
    diff = models.JSONField(default=list)
    payload_hash = models.CharField(max_length=64)
    state = models.CharField(
        max_length=10, choices=ChangeState.choices, default=ChangeState.DRAFT, db_index=True
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Gerrit's "uploader": whoever last changed the payload may not approve this version.
    last_editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    # The apply step: who asked (the task re-establishes them as the audit actor), its
    # lease against a second worker, and Braze's answer.
    apply_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    apply_attempts = models.PositiveIntegerField(default=0)
    applying_since = models.DateTimeField(null=True, blank=True)
    braze_response = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    error_id = models.CharField(max_length=200, blank=True)
    current_snapshot = models.JSONField(null=True, blank=True)  # Braze's state on conflict
    # Set by an approver on the approval form, for resources whose applier allows it (bulk
    # jobs): the work may use the whole of Braze's limit rather than background work's
    # share. Other clients' observed use is still left free (console/braze/limiter/README.md).
    full_rate_limit = models.BooleanField(default=False)
    # The author's "apply at": once approved, the worker applies it at this moment
    # (change_requests_apply_due), not at the approval. Reviewers approve it with the time.
    apply_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "-id"], name="cr_state_id"),
            models.Index(fields=["author", "-id"], name="cr_author_id"),
            models.Index(fields=["resource_type", "identifier"], name="cr_resource"),
            models.Index(
                fields=["apply_at"],
                name="cr_approved_apply_at",
                condition=models.Q(state="approved", apply_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("changes:detail", args=[self.pk])


class Decision(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class Review(models.Model):
    """A reviewer's decision, bound to the payload hash it was made on."""

    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="reviews"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    payload_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A replayed approve POST cannot count twice for the same version.
            models.UniqueConstraint(
                fields=["change_request", "reviewer", "payload_hash"],
                condition=models.Q(decision="approve", dismissed_at__isnull=True),
                name="one_live_approval_per_reviewer_and_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.decision} on #{self.change_request_id}"


class Comment(models.Model):
    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment on #{self.change_request_id}"


class ApprovalPolicy(models.Model):
    """Approvals needed for a resource type and action; rows override the defaults, and a
    workspace's own row overrides the row for every workspace ("")."""

    workspace = models.CharField(max_length=WORKSPACE_KEY_LENGTH, blank=True, default="")
    resource_type = models.CharField(max_length=80)
    action = models.CharField(max_length=10, choices=ChangeAction.choices)
    required_approvals = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "resource_type", "action"],
                name="one_policy_per_rule_per_workspace",
            ),
            # Nothing reaches Braze without at least one other person's approval.
            models.CheckConstraint(
                condition=models.Q(required_approvals__gte=1), name="policy_needs_a_reviewer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.action}: {self.required_approvals}"


class SponsorReason(models.TextChoices):
    CREATED = "created", "Created the account"
    ROLES = "roles", "Last changed its roles"


class AccountSponsor(models.Model):
    """Who created a console account, and who last changed its roles.

    Such a person could have made the account for themselves, so the account may not
    approve their change requests (`change_request_approve`). The roles rows are replaced
    at every role change; the created row stays.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sponsors"
    )
    sponsor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=10, choices=SponsorReason.choices)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "sponsor", "reason"], name="one_sponsor_row_per_reason"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sponsor_id} {self.reason} {self.user_id}"
