"""The mirror follows an applied schema change in the workspace it was applied in."""

import pytest
from django.utils import timezone

from catalogs.models import Catalog, CatalogItem, CatalogSelection
from catalogs.schema_appliers import CatalogSelectionApplier
from catalogs.schema_services import (
    SELECTION_IDENTIFIERS,
    catalog_field_inventory_learn,
    catalog_field_mirror_write,
)
from console.workspaces import workspace_override

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_workspaces")]


FIELDS = [{"name": "colour", "type": "string"}, {"name": "size", "type": "number"}]


def _products(workspace: str, items: int) -> Catalog:
    catalog = Catalog.objects.create(workspace=workspace, name="products", fields=FIELDS)
    CatalogItem.objects.bulk_create(
        CatalogItem(
            catalog=catalog,
            item_id=f"i{n}",
            data={"colour": "red", "size": n},
            search_text=f"i{n} red",
            mirrored_at=timezone.now(),
        )
        for n in range(items)
    )
    return catalog


def test_a_deleted_field_leaves_every_item_of_its_workspaces_catalog_only() -> None:
    staging, production = _products("staging", 3), _products("production", 2005)

    with workspace_override("production"):
        catalog_field_mirror_write(
            catalog_name="products", action="delete", field={"name": "colour", "type": "string"}
        )

    production.refresh_from_db()
    staging.refresh_from_db()
    assert [f["name"] for f in production.fields] == ["size"]
    assert [f["name"] for f in staging.fields] == ["colour", "size"]
    assert not CatalogItem.objects.filter(catalog=production, data__has_key="colour").exists()
    assert CatalogItem.objects.filter(catalog=production).count() == 2005
    assert CatalogItem.objects.filter(catalog=staging, data__has_key="colour").count() == 3
    assert "red" not in CatalogItem.objects.get(catalog=production, item_id="i2004").search_text


def test_an_inventory_field_is_learnt_in_its_own_workspace() -> None:
    staging, production = _products("staging", 0), _products("production", 0)

    with workspace_override("production"):
        catalog_field_inventory_learn(catalog_name="products", field_name="size")

    production.refresh_from_db()
    staging.refresh_from_db()
    assert (production.inventory_fields, staging.inventory_fields) == (["size"], [])


def test_a_selection_change_reads_its_base_from_its_own_workspace() -> None:
    staging = _products("staging", 0)
    _products("production", 0)
    CatalogSelection.objects.create(catalog=staging, name="cheap", definition={"filters": []})
    identifier = SELECTION_IDENTIFIERS.build(catalog="products", selection="cheap")

    with workspace_override("production"):
        assert CatalogSelectionApplier().read_current(identifier) is None
    with workspace_override("staging"):
        assert CatalogSelectionApplier().read_current(identifier) is not None
