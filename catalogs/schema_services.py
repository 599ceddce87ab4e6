"""Catalog fields and selections: proposing changes, and the mirror once Braze applied them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from catalogs import schema_rules
from catalogs.models import Catalog, CatalogItem, CatalogSelection
from catalogs.services import _search_text
from console.changes.models import ChangeRequest
from console.changes.resource_types import Identifiers
from console.changes.services import change_request_propose
from console.workspaces import workspace_default_key

FIELD_RESOURCE = "catalog_field"
SELECTION_RESOURCE = "catalog_selection"
FIELD_IDENTIFIERS = Identifiers("{catalog}/{field}")
SELECTION_IDENTIFIERS = Identifiers("{catalog}/{selection}")


class SchemaChangeRefused(ValueError):
    """Braze would refuse the change: its messages, in Braze's words, nothing proposed."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(" ".join(errors))
        self.errors = errors


def _refuse_if(errors: list[str]) -> None:
    if errors:
        raise SchemaChangeRefused(errors)


def catalog_selections_known(*, catalog: Catalog) -> dict[str, dict[str, Any]]:
    return {s.name: dict(s.definition) for s in CatalogSelection.objects.filter(catalog=catalog)}


def catalog_field_propose_create(
    *, actor: AbstractBaseUser, catalog: Catalog, name: str, field_type: str
) -> ChangeRequest:
    held = [str(f["name"]) for f in catalog.fields]
    _refuse_if(schema_rules.new_field_errors([(name, field_type)], held=held))
    return change_request_propose(
        actor=actor,
        resource_type=FIELD_RESOURCE,
        identifier=FIELD_IDENTIFIERS.build(catalog=catalog.name, field=name),
        action="create",
        payload={"name": name, "type": field_type},
        base_snapshot=None,
        title=f"Add field {name} ({field_type}) to {catalog.name}",
    )


def catalog_fields_propose_create(
    *, actor: AbstractBaseUser, catalog: Catalog, fields: list[tuple[str, str]]
) -> list[ChangeRequest]:
    """Several new fields at once, checked together (Braze's rules over the set), each its
    own change request: each is reviewed, applied and confirmed on its own. Each proposal is
    a durable transaction of its own (with its audit row), so they are not wrapped in one."""
    held = [str(f["name"]) for f in catalog.fields]
    _refuse_if(schema_rules.new_field_errors(fields, held=held))
    return [
        catalog_field_propose_create(actor=actor, catalog=catalog, name=name, field_type=kind)
        for name, kind in fields
    ]


def catalog_field_propose_delete(
    *, actor: AbstractBaseUser, catalog: Catalog, field_name: str
) -> ChangeRequest:
    _refuse_if(
        schema_rules.field_delete_errors(
            field_name,
            fields=[str(f["name"]) for f in catalog.fields],
            selections=catalog_selections_known(catalog=catalog),
            inventory=catalog.inventory_fields,
        )
    )
    field_type = catalog.field_types()[field_name]
    return change_request_propose(
        actor=actor,
        resource_type=FIELD_RESOURCE,
        identifier=FIELD_IDENTIFIERS.build(catalog=catalog.name, field=field_name),
        action="delete",
        payload={},
        base_snapshot={"name": field_name, "type": field_type},
        title=f"Delete field {field_name} from {catalog.name}",
    )


def selection_definition(
    *,
    catalog: Catalog,
    name: str,
    description: str = "",
    filters: list[dict[str, Any]],
    results_limit: int,
    sort_field: str | None,
    sort_order: str | None,
) -> dict[str, Any]:
    """Braze's selection object (with its name), values in the field's own type."""
    types = catalog.field_types()
    clean = []
    for f in filters:
        ok, value = schema_rules.filter_value(types.get(f["field"], ""), f["value"])
        clean.append({**f, "value": value if ok else f["value"]})
    return {
        "name": name,
        "description": description,
        # Braze's object page requires a unique external id; the console's is derived from
        # the names, which Braze already keeps unique per catalog.
        "external_id": f"console-{catalog.name}-{name}",
        "filters": clean,
        "results_limit": results_limit,
        "sort_field": sort_field or None,
        "sort_order": sort_order or None,
    }


def catalog_selection_propose_create(
    *, actor: AbstractBaseUser, catalog: Catalog, definition: Mapping[str, Any]
) -> ChangeRequest:
    _refuse_if(
        schema_rules.selection_errors(
            definition,
            types=catalog.field_types(),
            taken=catalog_selections_known(catalog=catalog),
        )
    )
    name = str(definition["name"])
    return change_request_propose(
        actor=actor,
        resource_type=SELECTION_RESOURCE,
        identifier=SELECTION_IDENTIFIERS.build(catalog=catalog.name, selection=name),
        action="create",
        payload=dict(definition),
        base_snapshot=None,
        title=f"Create selection {name} in {catalog.name}",
    )


def catalog_selection_propose_delete(
    *, actor: AbstractBaseUser, selection: CatalogSelection
) -> ChangeRequest:
    return change_request_propose(
        actor=actor,
        resource_type=SELECTION_RESOURCE,
        identifier=SELECTION_IDENTIFIERS.build(
            catalog=selection.catalog.name, selection=selection.name
        ),
        action="delete",
        payload={},
        base_snapshot=selection.state(),
        title=f"Delete selection {selection.name} from {selection.catalog.name}",
    )


# --- the mirror, once Braze applied a change --------------------------------------------


def catalog_field_inventory_learn(*, catalog_name: str, field_name: str) -> None:
    """Braze refused to delete `field_name` as an inventory field: remember it."""
    with transaction.atomic():
        catalog = (
            Catalog.objects.select_for_update()
            .filter(workspace=workspace_default_key(), name=catalog_name)
            .first()
        )
        if catalog is None or field_name in catalog.inventory_fields:
            return
        catalog.inventory_fields = sorted({*catalog.inventory_fields, field_name})
        catalog.save(update_fields=["inventory_fields", "refreshed_at"])


@transaction.atomic
def catalog_field_mirror_write(*, catalog_name: str, action: str, field: Mapping[str, str]) -> None:
    """The schema, and every mirrored item: a deleted field's values leave with it."""
    catalog = (
        Catalog.objects.select_for_update()
        .filter(workspace=workspace_default_key(), name=catalog_name)
        .first()
    )
    if catalog is None:
        return
    name = field["name"]
    kept = [f for f in catalog.fields if f["name"] != name]
    if action == "create":
        kept.append({"name": name, "type": field["type"]})
    catalog.fields = kept
    catalog.save(update_fields=["fields", "refreshed_at"])
    if action == "delete":
        types = catalog.field_types()
        items = CatalogItem.objects.filter(catalog=catalog, data__has_key=name)
        # In chunks: a field of a million-item catalog must not hold every item in memory.
        chunk: list[CatalogItem] = []
        for row in items.iterator(chunk_size=2000):
            row.data.pop(name, None)
            row.search_text = _search_text(row.item_id, row.data, types)
            chunk.append(row)
            if len(chunk) == 2000:
                CatalogItem.objects.bulk_update(chunk, ["data", "search_text"], batch_size=500)
                chunk = []
        CatalogItem.objects.bulk_update(chunk, ["data", "search_text"], batch_size=500)


def catalog_selection_mirror_write(
    *, catalog_name: str, action: str, state: Mapping[str, Any] | None, name: str
) -> None:
    catalog = Catalog.objects.filter(workspace=workspace_default_key(), name=catalog_name).first()
    if catalog is None:
        return
    if action == "delete":
        CatalogSelection.objects.filter(catalog=catalog, name=name).delete()
        return
    assert state is not None
    CatalogSelection.objects.update_or_create(
        catalog=catalog,
        name=name,
        defaults={"definition": {k: v for k, v in state.items() if k != "name"}},
    )
