"""Catalog fields and selections as change requests: proposed, approved, applied through the
sandbox's asynchronous endpoints, confirmed by reading the catalog back, mirrored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from braze_sandbox.catalog_schema import MESSAGES as SANDBOX_MESSAGES
from catalogs import schema_rules
from catalogs.models import Catalog, CatalogItem, CatalogSelection
from catalogs.schema_services import (
    SchemaChangeRefused,
    catalog_field_propose_create,
    catalog_field_propose_delete,
    catalog_selection_propose_create,
    catalog_selection_propose_delete,
    selection_definition,
)
from catalogs.services import catalog_sync_request, catalog_sync_step
from console.braze.client import BrazeClient
from console.changes.models import ChangeRequest, ChangeState
from console.changes.policy import approvals_required
from console.changes.services import change_request_apply, change_request_approve
from console.roles import Role
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def stores(products: Catalog, sync_client: BrazeClient, settings: Settings) -> Catalog:
    settings.CATALOG_SCHEMA_APPLY_WAIT_SECONDS = 10.0
    catalog = Catalog.objects.get(name="stores")
    sync = catalog_sync_request(catalog=catalog, actor=None)
    catalog_sync_step(sync_id=sync.pk, client=sync_client)
    catalog.refresh_from_db()
    return catalog


def _apply(cr: ChangeRequest, *reviewers: User) -> ChangeRequest:
    for reviewer in reviewers:
        change_request_approve(actor=reviewer, change_request=cr)
    return change_request_apply(change_request_id=cr.pk, actor_id=reviewers[-1].pk)


def _f(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def _sundays(catalog: Catalog, **overrides: Any) -> dict[str, Any]:
    return selection_definition(
        catalog=catalog,
        name=overrides.pop("name", "sundays"),
        filters=overrides.pop("filters", [_f("open_sundays", "is", "true")]),
        results_limit=overrides.pop("results_limit", 10),
        sort_field=overrides.pop("sort_field", "city"),
        sort_order=overrides.pop("sort_order", "asc"),
    )


def test_the_consoles_words_are_the_sandboxes_for_every_shared_error_id() -> None:
    for error_id, message in schema_rules.MESSAGES.items():
        assert SANDBOX_MESSAGES[error_id] == message, error_id


def test_deleting_a_field_or_a_selection_needs_two_approvals_adding_one(db: None) -> None:
    assert approvals_required(resource_type="catalog_field", action="delete") == 2
    assert approvals_required(resource_type="catalog_selection", action="delete") == 2
    assert approvals_required(resource_type="catalog_field", action="create") == 1
    assert approvals_required(resource_type="catalog_selection", action="create") == 1


def test_an_added_field_is_applied_confirmed_by_read_back_and_mirrored(
    stores: Catalog, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    braze.admin.set_async_delay(0.1)
    cr = catalog_field_propose_create(
        actor=editor, catalog=stores, name="manager", field_type="string"
    )

    cr = _apply(cr, reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert (cr.braze_response or {})["confirmed"] == "read back"
    stores.refresh_from_db()
    assert stores.field_types()["manager"] == "string"


def test_a_field_braze_has_not_applied_in_time_fails_and_a_retry_finds_it_applied(
    stores: Catalog, editor: User, reviewer: User, braze: SandboxHandle, settings: Settings
) -> None:
    settings.CATALOG_SCHEMA_APPLY_WAIT_SECONDS = 0.3
    braze.admin.set_async_delay(3600)
    cr = catalog_field_propose_create(
        actor=editor, catalog=stores, name="floors", field_type="number"
    )

    cr = _apply(cr, reviewer)

    assert cr.state == ChangeState.FAILED
    assert "had not applied it" in cr.error_message
    braze.admin.flush_async()
    requests_before = len(braze.admin.log())
    cr.state = ChangeState.APPROVED
    cr.save()
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)
    assert cr.state == ChangeState.APPLIED
    assert not any("/fields" in e["path"] for e in braze.admin.log()[requests_before:])


def test_a_deleted_field_leaves_the_mirrors_schema_and_items_after_two_approvals(
    stores: Catalog, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    braze.admin.set_async_delay(0.2)
    assert CatalogItem.objects.filter(catalog=stores, data__has_key="lat").exists()
    cr = catalog_field_propose_delete(actor=editor, catalog=stores, field_name="lat")

    change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING
    cr = _apply(cr, user_with_role(Role.REVIEWER))

    assert cr.state == ChangeState.APPLIED, cr.error_message
    stores.refresh_from_db()
    assert "lat" not in stores.field_types()
    assert not CatalogItem.objects.filter(catalog=stores, data__has_key="lat").exists()


def test_a_selection_is_created_mirrored_and_the_field_it_uses_cannot_be_deleted(
    stores: Catalog, editor: User, reviewer: User, braze: SandboxHandle
) -> None:
    cr = catalog_selection_propose_create(actor=editor, catalog=stores, definition=_sundays(stores))

    cr = _apply(cr, reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    braze.admin.flush_async()
    [held] = braze.admin.catalog_selections("stores")
    assert held["filters"] == [{"field": "open_sundays", "operator": "is", "value": True}]
    mirrored = CatalogSelection.objects.get(catalog=stores, name="sundays")
    assert mirrored.definition["sort_field"] == "city"
    with pytest.raises(SchemaChangeRefused) as refused:
        catalog_field_propose_delete(actor=editor, catalog=stores, field_name="open_sundays")
    assert refused.value.errors == [
        "The catalog field is currently in use by a selection: sundays "
        "(field-referenced-by-selection)."
    ]

    deleted = catalog_selection_propose_delete(actor=editor, selection=mirrored)
    deleted = _apply(deleted, reviewer, user_with_role(Role.REVIEWER))
    assert deleted.state == ChangeState.APPLIED, deleted.error_message
    braze.admin.flush_async()
    assert braze.admin.catalog_selections("stores") == []
    assert not CatalogSelection.objects.filter(catalog=stores).exists()
    catalog_field_propose_delete(actor=editor, catalog=stores, field_name="open_sundays")


@pytest.mark.parametrize(
    ("overrides", "error_id"),
    [
        ({"name": "bad name"}, "invalid-selection"),
        ({"filters": [_f("city", "equals", "x")] * 5}, "too-many-filters"),
        ({"filters": [_f("city", "greater than", "x")]}, "selection-has-invalid-filter"),
        ({"filters": [_f("lat", "less than", "north")]}, "selection-has-invalid-filter"),
        ({"results_limit": 51}, "selection-invalid-results-limit"),
        ({"sort_order": ""}, "invalid-sorting"),
        ({"sort_field": "nope"}, "invalid-sort-field"),
        ({"sort_order": "up"}, "invalid-sort-order"),
    ],
)
def test_a_selection_braze_would_refuse_is_refused_before_anything_is_sent_in_its_words(
    stores: Catalog,
    editor: User,
    braze: SandboxHandle,
    sync_client: BrazeClient,
    overrides: dict[str, Any],
    error_id: str,
) -> None:
    definition = _sundays(stores, **overrides)
    with pytest.raises(SchemaChangeRefused) as refused:
        catalog_selection_propose_create(actor=editor, catalog=stores, definition=definition)
    assert any(f"({error_id})" in e for e in refused.value.errors)
    assert not ChangeRequest.objects.exists()

    # The sandbox answers the same request with Braze's id and the same words.
    answer = httpx.post(
        f"{braze.url}/catalogs/stores/selections",
        headers={"Authorization": f"Bearer {braze.api_key}"},
        json={"selection": {k: v for k, v in definition.items() if v is not None}},
    )
    error = answer.json()["errors"][0]
    assert (answer.status_code, error["id"]) == (400, error_id)
    assert error["message"] == schema_rules.MESSAGES[error_id]


def test_an_inventory_field_braze_refused_to_delete_is_refused_by_the_console_next_time(
    stores: Catalog,
    editor: User,
    reviewer: User,
    braze: SandboxHandle,
    client_for: Callable[[Role], Client],
) -> None:
    # Braze's API marks inventory fields nowhere: the first attempt is Braze's to refuse.
    braze.admin.set_inventory_fields("stores", ["lon"])
    cr = catalog_field_propose_delete(actor=editor, catalog=stores, field_name="lon")

    cr = _apply(cr, reviewer, user_with_role(Role.REVIEWER))

    assert cr.state == ChangeState.FAILED
    assert cr.error_id == "field-is-inventory"
    stores.refresh_from_db()
    assert stores.inventory_fields == ["lon"]
    assert "lon" in stores.field_types()
    with pytest.raises(SchemaChangeRefused) as refused:
        catalog_field_propose_delete(actor=editor, catalog=stores, field_name="lon")
    assert refused.value.errors == [
        f"{SANDBOX_MESSAGES['field-is-inventory']}: lon (field-is-inventory)."
    ]
    page = client_for(Role.EDITOR).get(stores.get_absolute_url()).content.decode()
    assert "<code>lon</code> <span" in page
