"""How approved catalog and catalog-item changes reach Braze, and the mirror at once."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from django.db.models import Q
from django.urls import reverse

from catalogs import rules, services
from catalogs.models import Catalog, CatalogItem
from console.braze import get_client
from console.braze.client import BrazeClient
from console.braze.errors import BrazeNotFound, BrazeValidationError
from console.changes.appliers import merge_state
from console.changes.diff import same
from console.changes.models import ChangeAction
from console.changes.resource_types import ResourceType, resource_type_register
from console.workspaces import workspace_default_key

LIST_REUSE_SECONDS = 5.0


def _client() -> BrazeClient:
    return get_client(lane="interactive", max_wait=30.0)


def _split(identifier: str) -> tuple[str, str]:
    parts = services.ITEM_IDENTIFIERS.parse(identifier)
    return parts["catalog"], parts["item"]


class CatalogItemApplier:
    """Single-item writes through Braze's synchronous item endpoints (50/min shared)."""

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        catalog_name, item_id = _split(identifier)
        try:
            item = _client().catalog_item_get(catalog_name=catalog_name, item_id=item_id)
        except BrazeNotFound:
            return None
        # In the mirror's form, so the conflict check compares times as instants.
        return rules.canonical_item(
            _types(catalog_name), {k: v for k, v in item.items() if k != "id"}
        )

    def _edit(self, client: BrazeClient, identifier: str, payload: dict[str, Any]) -> None:
        catalog_name, item_id = _split(identifier)
        try:
            client.catalog_item_edit(catalog_name=catalog_name, item_id=item_id, values=payload)
        except BrazeValidationError as exc:
            # A Braze that predates $add/$remove refuses them as keys with "$": send the
            # lists they make of what Braze holds now (the apply step has just checked that
            # it is still what the proposal was based on).
            ops = {k for k, v in payload.items() if rules.is_array_ops(v)}
            if not ops or "invalid-keys-in-value-object" not in exc.error_ids:
                raise
            current = self.read_current(identifier) or {}
            merged = rules.merge_values(current, payload)
            client.catalog_item_edit(
                catalog_name=catalog_name,
                item_id=item_id,
                values={k: merged[k] if k in ops else v for k, v in payload.items()},
            )

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        catalog_name, item_id = _split(identifier)
        client = _client()
        if action == "create":
            client.catalog_item_create(catalog_name=catalog_name, item_id=item_id, values=payload)
        elif action == "update":
            self._edit(client, identifier, payload)
        elif action == "delete":
            client.catalog_item_delete(catalog_name=catalog_name, item_id=item_id)
        else:
            raise ValueError(f"catalog items have no {action!r} action")
        catalog = Catalog.objects.filter(
            workspace=workspace_default_key(), name=catalog_name
        ).first()
        if catalog is not None:
            services.catalog_item_mirror_write(
                catalog=catalog, item_id=item_id, action=action, values=payload
            )
        return {"message": "success", "item_id": item_id}

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self.read_current(identifier)
        if action == "delete":
            return current is None
        if current is None:
            return False
        types = _types(_split(identifier)[0])
        return all(_holds(types.get(k), current.get(k), v) for k, v in payload.items())

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        if action == "update":
            return rules.merge_values(base or {}, payload)
        return merge_state(base, action, payload)


def _types(catalog_name: str) -> dict[str, str]:
    catalog = Catalog.objects.filter(workspace=workspace_default_key(), name=catalog_name).first()
    return catalog.field_types() if catalog is not None else {}


def _holds(field_type: str | None, held: Any, sent: Any) -> bool:
    """Whether Braze's value already carries what was sent (operators: added values there,
    removed ones gone)."""
    if rules.is_array_ops(sent):
        have = held if isinstance(held, list) else []
        return all(v in have for v in sent.get(rules.ARRAY_ADD, [])) and not any(
            v in have for v in sent.get(rules.ARRAY_REMOVE, [])
        )
    return rules.same_value(field_type, held, sent) or same(held, sent)


class CatalogApplier:
    """Catalog create and delete (the 5/min synchronous catalog endpoints)."""

    def __init__(self) -> None:
        self._listed: tuple[float, list[Any]] | None = None

    def _list(self) -> list[Any]:
        # The apply step asks is_applied, then read_current: one listing serves both, as
        # the catalog endpoints allow only 5 requests a minute.
        now = time.monotonic()
        if self._listed is None or now - self._listed[0] > LIST_REUSE_SECONDS:
            self._listed = (now, _client().catalog_list())
        return self._listed[1]

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        for catalog in self._list():
            if catalog.name == identifier:
                return {
                    "name": catalog.name,
                    "description": catalog.description,
                    "fields": [{"name": f.name, "type": f.type} for f in catalog.fields],
                }
        return None

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        client, self._listed = _client(), None
        if action == "create":
            created = client.catalog_create(
                name=identifier,
                description=payload.get("description", ""),
                fields=payload["fields"],
            )
            services.catalog_mirror_upsert(braze_catalog=created)
        elif action == "delete":
            client.catalog_delete(name=identifier)
            services.catalog_mirror_write(name=identifier, action="delete", state=None)
        else:
            raise ValueError(f"catalogs have no {action!r} action")
        return {"message": "success", "catalog": identifier}

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self.read_current(identifier)
        if action == "delete":
            return current is None
        return current is not None and same(current.get("fields"), payload.get("fields"))

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


def catalog_urls(identifiers: Collection[str]) -> dict[str, str]:
    """Pages of the catalogs the mirror still holds, by name."""
    names = Catalog.objects.filter(
        workspace=workspace_default_key(), name__in=identifiers
    ).values_list("name", flat=True)
    return {name: reverse("catalogs:detail", args=[name]) for name in names}


def item_urls(identifiers: Collection[str]) -> dict[str, str]:
    """Pages of the items the mirror still holds, by "<catalog>/<item>"."""
    wanted = Q()
    for identifier in identifiers:
        try:
            parts = services.ITEM_IDENTIFIERS.parse(identifier)
        except ValueError:
            continue
        wanted |= Q(catalog__name=parts["catalog"], item_id=parts["item"])
    if not wanted:
        return {}
    found = CatalogItem.objects.filter(
        wanted, catalog__workspace=workspace_default_key()
    ).values_list("catalog__name", "item_id")
    return {
        services.ITEM_IDENTIFIERS.build(catalog=catalog, item=item): reverse(
            "catalogs:item_detail", args=[catalog, item]
        )
        for catalog, item in found
    }


def register() -> None:
    resource_type_register(
        ResourceType(
            key=services.ITEM_RESOURCE,
            label="Catalog item",
            applier=CatalogItemApplier(),
            identifiers=services.ITEM_IDENTIFIERS,
            urls_of=item_urls,
        )
    )
    resource_type_register(
        ResourceType(
            key=services.CATALOG_RESOURCE,
            label="Catalog",
            applier=CatalogApplier(),
            identifiers=services.CATALOG_IDENTIFIERS,
            urls_of=catalog_urls,
            # A deleted catalog takes all its items with it: a second pair of eyes.
            default_approvals={ChangeAction.DELETE: 2},
        )
    )
