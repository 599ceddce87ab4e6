from __future__ import annotations

from django.db import models

from console.workspaces import WORKSPACE_KEY_LENGTH, workspace_default_key


class ResourceType(models.TextChoices):
    EMAIL_TEMPLATE = "email_template", "Email template"
    CONTENT_BLOCK = "content_block", "Content Block"
    PREFERENCE_CENTER = "preference_center", "Preference center"


class VersionSource(models.TextChoices):
    SYNCED = "synced", "Seen on sync"
    APPLIED = "applied", "Applied by the console"


class ContentVersion(models.Model):
    """One state of a Braze resource that the console saw or wrote.

    Braze keeps no history of these resources (braze-facts §0.3); this table is it.
    A new row is stored only when the content digest changes. Migration 0003 adds what
    content search reads and the model does not declare: the generated columns
    `search_vector` (full text) and `search_text` (lowercase, trigram-indexed).
    """

    # Braze ids are per workspace: the same id in two workspaces is two resources.
    workspace = models.CharField(
        max_length=WORKSPACE_KEY_LENGTH, db_index=True, default=workspace_default_key
    )
    resource_type = models.CharField(max_length=40, choices=ResourceType.choices)
    braze_id = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=300)
    snapshot = models.JSONField()
    digest = models.CharField(max_length=64)
    source = models.CharField(max_length=10, choices=VersionSource.choices)
    # Braze's own "updated_at"/"last_edited" when the version was read; lets the sync skip
    # resources whose list entry says nothing changed.
    remote_updated_at = models.CharField(max_length=40, blank=True)
    # A Content Block's state as the console last set it (Braze's API never reports it).
    state = models.CharField(max_length=10, blank=True)
    change_request_id = models.BigIntegerField(null=True, blank=True)
    seen_at = models.DateTimeField(auto_now_add=True)
    # The Content Blocks this version's Liquid includes (templates_app.search.version_includes),
    # kept so "where is this block used" is an index lookup, not a parse of every version.
    # A JSON list: an ArrayField would need django.contrib.postgres installed.
    includes = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "resource_type", "braze_id", "version"],
                name="one_row_per_version_per_workspace",
            )
        ]
        indexes = [
            models.Index(
                fields=["workspace", "resource_type", "braze_id", "-version"],
                name="version_latest_per_workspace",
            )
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.name} v{self.version}"


class PreviewProfile(models.Model):
    """A made-up person content is previewed as (docs/preview.md, "The person").

    Attributes are shaped like one user of Braze's user export, so a profile and a user
    read from Braze render alike.
    """

    # Each workspace has its own people to preview as (its languages, its attributes).
    workspace = models.CharField(
        max_length=WORKSPACE_KEY_LENGTH, db_index=True, default=workspace_default_key
    )
    name = models.CharField(max_length=100)
    attributes = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=10, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="preview_profile_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class PreviewSettings(models.Model):
    """The workspace's preview settings: one row per workspace.

    `connected_content_samples` maps a URL pattern (fnmatch: `*` and `?`) to the answer a
    preview uses instead of calling it; the console never calls a Connected Content URL.
    """

    workspace = models.CharField(
        max_length=WORKSPACE_KEY_LENGTH, unique=True, default=workspace_default_key
    )
    connected_content_samples = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "Preview settings"
