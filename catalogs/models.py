"""The local mirror of Braze catalogs.

Braze serves items 50 to a page at 50 requests a minute shared by every synchronous item
endpoint, so screens read this mirror and a background sync keeps it fresh.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from console.workspaces import WORKSPACE_KEY_LENGTH, workspace_default_key


class Catalog(models.Model):
    """A catalog as Braze last reported it, plus how fresh the item mirror is."""

    # Its items, selections, syncs and bulk jobs belong to the same workspace through it.
    workspace = models.CharField(
        max_length=WORKSPACE_KEY_LENGTH, db_index=True, default=workspace_default_key
    )
    # Unique per workspace: each workspace has its own catalogs of the same names.
    name = models.CharField(max_length=250)
    description = models.CharField(max_length=250, blank=True)
    # [{"name": "id", "type": "string"}, ...] in Braze's order (id first).
    fields = models.JSONField(default=list)
    braze_item_count = models.PositiveIntegerField(default=0)
    braze_updated_at = models.DateTimeField(null=True, blank=True)
    mirror_item_count = models.PositiveIntegerField(default=0)
    # The end of the last full pass: every item in the mirror was seen in Braze then.
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    # False once Braze no longer lists the catalog; the mirror is kept for the record.
    present_in_braze = models.BooleanField(default=True)
    # Fields Braze refused to delete as inventory fields (a commerce sync's). Braze's API
    # marks them nowhere, so the console learns them from that refusal and then refuses a
    # second attempt before sending it.
    inventory_fields = models.JSONField(default=list, blank=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="catalog_unique_name_per_workspace"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("catalogs:detail", args=[self.name])

    def field_types(self) -> dict[str, str]:
        return {str(f["name"]): str(f["type"]) for f in self.fields}

    def value_fields(self) -> list[dict[str, Any]]:
        """The fields an item carries besides its id."""
        return [f for f in self.fields if f["name"] != "id"]


class CatalogItem(models.Model):
    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="items")
    item_id = models.CharField(max_length=250)
    data = models.JSONField(default=dict)  # every field except id, as Braze returns it
    # Lower-cased string values, for the trigram index behind search and "contains".
    search_text = models.TextField(blank=True, default="")
    # The sync pass that last saw this item in Braze; removal is decided at the pass's end.
    seen_sync_id = models.BigIntegerField(null=True, blank=True)
    mirrored_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["catalog", "item_id"], name="catalog_item_unique_id")
        ]
        # The trigram index on search_text is created in SQL (0001_initial): GinIndex
        # would need django.contrib.postgres installed for nothing else.

    def __str__(self) -> str:
        return f"{self.catalog_id}/{self.item_id}"


class CatalogSelection(models.Model):
    """A selection the console created in Braze, with its definition.

    Braze's API lists no selections: the console knows those it created (and keeps the
    definition to preview them, to find what uses a field, and to check for conflicts).
    """

    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="selections")
    name = models.CharField(max_length=250)
    # {"description", "external_id", "filters": [{field, operator, value}], "results_limit",
    #  "sort_field", "sort_order"}: Braze's selection object without its name.
    definition = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["catalog", "name"], name="catalog_selection_unique")
        ]

    def __str__(self) -> str:
        return f"{self.catalog_id}/{self.name}"

    def state(self) -> dict[str, object]:
        return {"name": self.name, **self.definition}


class SyncState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for Braze's rate limit"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE_SYNC_STATES = (SyncState.QUEUED, SyncState.RUNNING, SyncState.WAITING)


class CatalogSync(models.Model):
    """One full pass over a catalog's items, resumable from its cursor checkpoint."""

    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="syncs")
    state = models.CharField(
        max_length=10, choices=SyncState.choices, default=SyncState.QUEUED, db_index=True
    )
    trigger = models.CharField(max_length=20, default="manual")  # manual, schedule
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The cursor of the next page (from Braze's Link header); "" before the first page.
    cursor = models.TextField(blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    items_expected = models.PositiveIntegerField(default=0)
    items_added = models.PositiveIntegerField(default=0)
    items_changed = models.PositiveIntegerField(default=0)
    items_removed = models.PositiveIntegerField(default=0)
    # Entries Braze listed without an item id: they cannot be mirrored and are left out.
    items_skipped = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One pass at a time per catalog: a second "Refresh" joins the running one.
            models.UniqueConstraint(
                fields=["catalog"],
                condition=models.Q(state__in=["queued", "running", "waiting"]),
                name="one_active_sync_per_catalog",
            )
        ]

    def __str__(self) -> str:
        return f"sync {self.pk} of {self.catalog_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_SYNC_STATES

    @property
    def percent(self) -> int:
        if self.state == SyncState.SUCCEEDED:
            return 100
        if not self.items_expected:
            return 0
        return min(99, self.items_done * 100 // self.items_expected)
