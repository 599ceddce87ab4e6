"""REST API key permission names, as Braze's endpoint pages spell them."""

from __future__ import annotations

ALL_PERMISSIONS: tuple[str, ...] = (
    "catalogs.get",
    "catalogs.create",
    "catalogs.delete",
    "catalogs.add_items",
    "catalogs.update_items",
    "catalogs.replace_items",
    "catalogs.delete_items",
    "catalogs.get_items",
    "catalogs.get_item",
    "catalogs.create_item",
    "catalogs.update_item",
    "catalogs.replace_item",
    "catalogs.delete_item",
    "templates.email.list",
    "templates.email.info",
    "templates.email.create",
    "templates.email.update",
    "content_blocks.list",
    "content_blocks.info",
    "content_blocks.create",
    "content_blocks.update",
    "preference_center.list",
    "preference_center.get",
    "preference_center.update",
    "preference_center.user.get",
)
