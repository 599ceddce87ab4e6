"""How approved catalog field and selection changes reach Braze.

The four endpoints are asynchronous: a 202 means Braze queued the change. The field applier
waits until the catalog, read back, shows it (up to CATALOG_SCHEMA_APPLY_WAIT_SECONDS), then
writes the mirror; a change Braze has not applied by then fails with that said, and a retry
finds it applied without sending it again. Braze's API lists no selections: the selection
applier reads back the catalog the selection depends on, and the console's own record of the
selections it created is what conflicts are checked against.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from catalogs import schema_rules, schema_selectors, schema_services
from catalogs.models import Catalog, CatalogSelection
from console.braze.client import BrazeClient, SelectionFilter
from console.braze.client import CatalogSelection as BrazeSelection
from console.braze.errors import BrazeRateLimited, BrazeValidationError, error_identity
from console.changes.appliers import ApplyRefused, merge_state
from console.changes.models import ChangeAction, ChangeRequest
from console.changes.resource_types import ResourceType, resource_type_register
from console.workspaces import workspace_default_key

# Between read-backs: short first (the sandbox and a quiet Braze apply within a second or
# two), then longer, as each read-back spends a synchronous catalog request.
POLL_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
_INVENTORY = error_identity("field-is-inventory")


def _client() -> BrazeClient:
    from console.braze import get_client  # the client module builds on settings at call time

    return get_client(lane="interactive", max_wait=30.0)


def _wait_seconds() -> float:
    return float(getattr(settings, "CATALOG_SCHEMA_APPLY_WAIT_SECONDS", 60.0))


def _catalog_fields(catalog_name: str) -> dict[str, str] | None:
    for catalog in _client().catalog_list():
        if catalog.name == catalog_name:
            return {f.name: f.type for f in catalog.fields}
    return None


class CatalogFieldApplier:
    """Each read-back spends a synchronous catalog request (5 a minute on some accounts):
    the apply step's `is_applied` then `read_current` share one listing, and polling
    after a 202 outlasts a rate-limited read instead of failing on it."""

    def __init__(self) -> None:
        self._listed: tuple[float, str, dict[str, str] | None] | None = None

    def _fields(self, catalog_name: str, *, reuse: bool) -> dict[str, str] | None:
        listed, self._listed = self._listed, None
        if reuse and listed and listed[1] == catalog_name and time.monotonic() - listed[0] < 5:
            return listed[2]
        fields = _catalog_fields(catalog_name)
        self._listed = (time.monotonic(), catalog_name, fields)
        return fields

    def _current(self, identifier: str, *, reuse: bool) -> dict[str, Any] | None:
        parts = schema_services.FIELD_IDENTIFIERS.parse(identifier)
        fields = self._fields(parts["catalog"], reuse=reuse) or {}
        if parts["field"] not in fields:
            return None
        return {"name": parts["field"], "type": fields[parts["field"]]}

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        # Right after is_applied in the apply step: the same listing.
        return self._current(identifier, reuse=True)

    def _wait_until(self, identifier: str, action: str, payload: dict[str, Any]) -> None:
        deadline = time.monotonic() + _wait_seconds()
        for step in range(1_000_000):
            time.sleep(POLL_SECONDS[min(step, len(POLL_SECONDS) - 1)])
            try:
                if self.is_applied(action, identifier, payload):
                    return
            except BrazeRateLimited:
                pass  # accepted already: keep waiting for a read-back within the deadline
            if time.monotonic() >= deadline:
                break
        raise ApplyRefused(
            f"Braze accepted the change but had not applied it after {_wait_seconds():.0f} s. "
            "Retry to check again: nothing is sent twice."
        )

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        parts = schema_services.FIELD_IDENTIFIERS.parse(identifier)
        catalog_name, field_name = parts["catalog"], parts["field"]
        client, self._listed = _client(), None
        if action == "create":
            client.catalog_fields_create(catalog_name=catalog_name, fields=[payload])
        elif action == "delete":
            try:
                client.catalog_field_delete(catalog_name=catalog_name, field_name=field_name)
            except BrazeValidationError as refused:
                if any(error_identity(i) == _INVENTORY for i in refused.error_ids):
                    schema_services.catalog_field_inventory_learn(
                        catalog_name=catalog_name, field_name=field_name
                    )
                raise
        else:
            raise ValueError(f"catalog fields have no {action!r} action")
        self._wait_until(identifier, action, payload)
        schema_services.catalog_field_mirror_write(
            catalog_name=catalog_name,
            action=action,
            field={"name": field_name, "type": str(payload.get("type", ""))},
        )
        return {"message": "success", "field": field_name, "confirmed": "read back"}

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self._current(identifier, reuse=False)
        if action == "delete":
            return current is None
        return current is not None and current.get("type") == payload.get("type")

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


def _braze_selection(state: dict[str, Any]) -> BrazeSelection:
    return BrazeSelection(
        name=state["name"],
        external_id=state["external_id"],
        description=state.get("description", ""),
        filters=tuple(
            SelectionFilter(f["field"], f["operator"], f["value"]) for f in state["filters"]
        ),
        results_limit=state.get("results_limit"),
        sort_field=state.get("sort_field"),
        sort_order=state.get("sort_order"),
    )


class CatalogSelectionApplier:
    def read_current(self, identifier: str) -> dict[str, Any] | None:
        parts = schema_services.SELECTION_IDENTIFIERS.parse(identifier)
        row = CatalogSelection.objects.filter(
            catalog__workspace=workspace_default_key(),
            catalog__name=parts["catalog"],
            name=parts["selection"],
        ).first()
        return row.state() if row is not None else None

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        parts = schema_services.SELECTION_IDENTIFIERS.parse(identifier)
        catalog_name, name = parts["catalog"], parts["selection"]
        client = _client()
        if action == "create":
            client.catalog_selection_create(
                catalog_name=catalog_name, selection=_braze_selection(payload)
            )
            # Read back what can be read: the fields the selection filters and sorts on.
            fields = _catalog_fields(catalog_name) or {}
            missing = sorted(schema_rules.selection_fields(payload) - fields.keys())
            if missing:
                raise ApplyRefused(
                    f"Braze accepted the selection, but the catalog no longer has "
                    f"{', '.join(missing)}: Braze will not create it."
                )
        elif action == "delete":
            client.catalog_selection_delete(catalog_name=catalog_name, selection_name=name)
        else:
            raise ValueError(f"catalog selections have no {action!r} action")
        schema_services.catalog_selection_mirror_write(
            catalog_name=catalog_name, action=action, state=payload, name=name
        )
        return {"message": "success", "selection": name}

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self.read_current(identifier)
        if action == "delete":
            return current is None
        return current is not None and current == payload

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


def _describe(dependents: schema_selectors.Dependents) -> list[str]:
    notes = []
    if dependents.selections:
        notes.append(f"Selections using it: {', '.join(dependents.selections)}.")
    for use in dependents.content:
        notes.append(f"{use.kind} {use.name} reads it in its Liquid.")
    if dependents.items_with_value:
        notes.append(f"{dependents.items_with_value} mirrored item(s) hold a value for it.")
    return notes


def review_notes(cr: ChangeRequest) -> list[str]:
    """What depends on a field or selection about to be deleted: the reviewer sees what the
    proposer saw, as it stands now."""
    if cr.action != ChangeAction.DELETE:
        return []
    if cr.resource_type == schema_services.FIELD_RESOURCE:
        parts = schema_services.FIELD_IDENTIFIERS.parse(cr.identifier)
        catalog = Catalog.objects.filter(
            workspace=workspace_default_key(), name=parts["catalog"]
        ).first()
        if catalog is None:
            return []
        found = schema_selectors.catalog_field_dependents(
            catalog=catalog, field_name=parts["field"]
        )
    else:
        parts = schema_services.SELECTION_IDENTIFIERS.parse(cr.identifier)
        catalog = Catalog.objects.filter(
            workspace=workspace_default_key(), name=parts["catalog"]
        ).first()
        if catalog is None:
            return []
        found = schema_selectors.catalog_selection_dependents(
            catalog=catalog, selection_name=parts["selection"]
        )
    return _describe(found) or ["Nothing the console knows of depends on it."]


def register() -> None:
    resource_type_register(
        ResourceType(
            key=schema_services.FIELD_RESOURCE,
            label="Catalog field",
            applier=CatalogFieldApplier(),
            identifiers=schema_services.FIELD_IDENTIFIERS,
            # A deleted field takes its value out of every item: a second pair of eyes.
            default_approvals={ChangeAction.DELETE: 2},
            review_notes=review_notes,
        )
    )
    resource_type_register(
        ResourceType(
            key=schema_services.SELECTION_RESOURCE,
            label="Catalog selection",
            applier=CatalogSelectionApplier(),
            identifiers=schema_services.SELECTION_IDENTIFIERS,
            # Messages that render the selection's items show nothing once it is gone.
            default_approvals={ChangeAction.DELETE: 2},
            review_notes=review_notes,
        )
    )
