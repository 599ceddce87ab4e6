from django.db import models


class AuditEntry(models.Model):
    """One audit event. Append-only: PostgreSQL refuses UPDATE, DELETE and TRUNCATE.

    `hash` = SHA-256(prev_hash + canonical content); the content covers every column
    below except the personal data, of which only a salted digest is chained.
    """

    seq = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    # The actor is copied, not referenced: entries must outlive the user row.
    actor_id = models.BigIntegerField(null=True, db_index=True)
    actor_name = models.CharField(max_length=200)
    actor_roles = models.CharField(max_length=200, blank=True)
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=400, blank=True)
    via = models.CharField(max_length=100, blank=True)  # web, celery:<task>, command:<name>
    action = models.CharField(max_length=80)
    resource_type = models.CharField(max_length=80, blank=True)
    resource_id = models.CharField(max_length=500, blank=True)
    change_request_id = models.BigIntegerField(null=True, db_index=True)
    # The workspace the event happened in; "" for entries written before workspaces (and for
    # events of no workspace, such as signing in). Hashed when set (hashing.entry_content).
    # The database default keeps inserts that name no workspace (older writers) valid.
    workspace = models.CharField(
        max_length=40, blank=True, default="", db_default="", db_index=True
    )
    outcome = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    personal_digest = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "audit_entry"
        indexes = [
            models.Index(fields=["action", "-seq"], name="audit_action_seq"),
            models.Index(fields=["actor_id", "-seq"], name="audit_actor_seq"),
            models.Index(fields=["actor_name", "-seq"], name="audit_actor_name_seq"),
            models.Index(fields=["outcome", "-seq"], name="audit_outcome_seq"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_resource"),
        ]
        constraints = [
            # No entry without an actor, whatever code path tries to write one.
            models.CheckConstraint(
                condition=~models.Q(actor_name=""), name="audit_entry_has_actor"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_name}"


class AuditPersonal(models.Model):
    """Readable personal data of an entry, kept beside the chain so it can be erased.

    The chain covers only SHA-256(salt + content), so deleting this row leaves every
    hash verifiable while the personal values are gone for good.
    """

    entry = models.OneToOneField(
        AuditEntry, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False
    )
    salt = models.CharField(max_length=32)
    data = models.JSONField()

    class Meta:
        db_table = "audit_personal"

    def __str__(self) -> str:
        return f"personal data of #{self.entry_id}"


class AuditCheckpoint(models.Model):
    """A signed statement of the chain's head at a moment; copied to a file outside the DB."""

    created_at = models.DateTimeField()
    last_seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    entry_count = models.BigIntegerField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=64)

    class Meta:
        db_table = "audit_checkpoint"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"checkpoint {self.id} at seq {self.last_seq}"
