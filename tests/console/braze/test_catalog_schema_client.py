"""The client's catalog field and selection methods against the sandbox (the referee)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from console.braze.client import (
    OPERATIONS,
    BrazeClient,
    CatalogField,
    CatalogSelection,
    SelectionFilter,
)
from console.braze.errors import BrazeNotFound, BrazeValidationError
from tests.console.braze.helpers import make_client, make_limits


@pytest.fixture
def client(braze_sandbox: Any, prefix: str) -> BrazeClient:
    return make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        scim_token=braze_sandbox.scim_token,
        limits=make_limits(),
        prefix=prefix,
    )


def _fields(client: BrazeClient, catalog: str = "stores") -> dict[str, str]:
    found = next(c for c in client.catalog_list() if c.name == catalog)
    return {f.name: f.type for f in found.fields}


def _schema_requests(sandbox: Any, since: float) -> list[dict[str, Any]]:
    return [
        e
        for e in sandbox.admin.log(since=since)
        if "/fields" in e["path"] or "/selections" in e["path"]
    ]


SUNDAYS = CatalogSelection(
    name="sundays",
    external_id="console-sundays",
    filters=(SelectionFilter("open_sundays", "is", True),),
    results_limit=2,
    sort_field="city",
    sort_order="asc",
)


def test_the_four_operations_are_in_the_fields_and_selections_limit_group() -> None:
    names = (
        "catalog_fields_create",
        "catalog_field_delete",
        "catalog_selection_create",
        "catalog_selection_delete",
    )
    assert {OPERATIONS[n].group for n in names} == {"catalog_fields_selections"}
    assert not any(OPERATIONS[n].reads for n in names)


def test_fields_are_added_then_deleted_once_braze_applies_each(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    client.catalog_fields_create(
        catalog_name="stores",
        fields=[CatalogField("manager", "string"), {"name": "floors", "type": "number"}],
    )
    braze_sandbox.admin.flush_async()
    assert _fields(client)["manager"] == "string"
    assert _fields(client)["floors"] == "number"

    client.catalog_field_delete(catalog_name="stores", field_name="floors")
    braze_sandbox.admin.flush_async()
    assert "floors" not in _fields(client)


def test_a_selection_is_created_with_its_definition_and_deleted(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    client.catalog_selection_create(catalog_name="stores", selection=SUNDAYS)
    braze_sandbox.admin.flush_async()
    [stored] = braze_sandbox.admin.catalog_selections("stores")
    assert stored["filters"] == [{"field": "open_sundays", "operator": "is", "value": True}]
    assert (stored["sort_field"], stored["sort_order"], stored["results_limit"]) == (
        "city",
        "asc",
        2,
    )
    assert [i["city"] for i in stored["items"]] == ["Berlin", "Lisbon"]

    client.catalog_selection_delete(catalog_name="stores", selection_name="sundays")
    braze_sandbox.admin.flush_async()
    assert braze_sandbox.admin.catalog_selections("stores") == []


def test_a_field_a_selection_uses_is_refused_with_brazes_error(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    client.catalog_selection_create(catalog_name="stores", selection=SUNDAYS)
    braze_sandbox.admin.flush_async()

    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_field_delete(catalog_name="stores", field_name="open_sundays")

    assert caught.value.error_ids == ("field-referenced-by-selection",)


def test_unknown_fields_and_selections_are_not_found(client: BrazeClient) -> None:
    with pytest.raises(BrazeNotFound):
        client.catalog_field_delete(catalog_name="stores", field_name="nope")
    with pytest.raises(BrazeNotFound):
        client.catalog_selection_delete(catalog_name="stores", selection_name="nope")


@pytest.mark.parametrize(
    ("call", "error_id"),
    [
        (
            lambda c: c.catalog_fields_create(
                catalog_name="stores",
                fields=[CatalogField(f"f{n}", "string") for n in range(51)],
            ),
            "request-includes-too-many-fields",
        ),
        (
            lambda c: c.catalog_selection_create(
                catalog_name="stores",
                selection=CatalogSelection(
                    name="many",
                    external_id="x",
                    filters=tuple(SelectionFilter("city", "equals", "x") for _ in range(5)),
                ),
            ),
            "too-many-filters",
        ),
    ],
)
def test_a_request_over_brazes_per_request_limits_is_refused_without_spending_quota(
    client: BrazeClient, braze_sandbox: Any, call: Any, error_id: str
) -> None:
    since = time.time()

    with pytest.raises(BrazeValidationError) as caught:
        call(client)

    assert caught.value.error_ids == (error_id,)
    assert _schema_requests(braze_sandbox, since) == []
