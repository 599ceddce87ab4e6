"""Catalog fields and selections: the four asynchronous endpoints, their errors and evaluation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox
from braze_sandbox.catalog_schema import MESSAGES, evaluate
from tests.braze_sandbox.conftest import REST, sandbox_client

pytestmark = pytest.mark.usefixtures("unlimited")

FIELDS = "/catalogs/stores/fields"
SELECTIONS = "/catalogs/stores/selections"


def _apply(sandbox: Sandbox) -> None:
    sandbox.apply_due(time.time() + 3600)


def _catalog(client: TestClient, name: str = "stores") -> dict[str, Any]:
    catalogs = client.get("/catalogs").json()["catalogs"]
    found: dict[str, Any] = next(c for c in catalogs if c["name"] == name)
    return found


def _field_names(client: TestClient) -> list[str]:
    return [f["name"] for f in _catalog(client)["fields"]]


def _error(response: Any) -> tuple[int, str, str]:
    error = response.json()["errors"][0]
    return response.status_code, error["id"], error["message"]


def _selection(**overrides: Any) -> dict[str, Any]:
    selection = {
        "name": "open-on-sundays",
        "external_id": "sel-1",
        "filters": [{"field": "open_sundays", "operator": "is", "value": True}],
        "results_limit": 10,
        "sort_field": "city",
        "sort_order": "asc",
    }
    return {"selection": {**selection, **overrides}}


def _f(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def _selections(client: TestClient) -> list[dict[str, Any]]:
    """The admin API, through the same client: the fixture's client carries the admin token."""
    found: list[dict[str, Any]] = client.get("/_sandbox/catalogs/stores/selections").json()[
        "selections"
    ]
    return found


# --- create fields ------------------------------------------------------------------------


def test_created_fields_appear_only_once_applied_and_every_item_gains_them(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.config.async_delay_seconds = 3600.0
    body = {"fields": [{"name": "manager", "type": "string"}, {"name": "tags", "type": "array"}]}

    response = client.post(FIELDS, json=body)

    assert (response.status_code, response.json()) == (202, {"message": "success"})
    assert "manager" not in _field_names(client)
    _apply(sandbox)
    assert _field_names(client)[-2:] == ["manager", "tags"]
    items = client.get("/catalogs/stores/items").json()["items"]
    assert items
    assert all("manager" in i and i["manager"] is None for i in items)


@pytest.mark.parametrize(
    ("fields", "error_id"),
    [
        ([], "invalid-fields"),
        ([{"name": "x"}], "invalid-fields"),
        (
            [{"name": f"f{n}", "type": "string"} for n in range(51)],
            "request-includes-too-many-fields",
        ),
        ([{"name": "bad name", "type": "string"}], "invalid-field-names"),
        ([{"name": "x" * 251, "type": "string"}], "field-names-too-large"),
        (
            [{"name": "a", "type": "string"}, {"name": "a", "type": "number"}],
            "field-names-not-unique",
        ),
        ([{"name": "city", "type": "string"}], "field-already-exists"),
        ([{"name": "a", "type": "date"}], "invalid-field-types"),
    ],
)
def test_create_fields_refuses_with_brazes_ids(
    client: TestClient, fields: list[Any], error_id: str
) -> None:
    response = client.post(FIELDS, json={"fields": fields})

    assert _error(response) == (400, error_id, MESSAGES[error_id])


def test_a_catalog_holds_at_most_500_fields(client: TestClient, sandbox: Sandbox) -> None:
    for batch in range(9):
        fields = [{"name": f"f{batch}_{n}", "type": "number"} for n in range(50)]
        assert client.post(FIELDS, json={"fields": fields}).status_code == 202
        _apply(sandbox)
    assert len(_field_names(client)) == 456

    over = [{"name": f"g{n}", "type": "number"} for n in range(45)]
    assert _error(client.post(FIELDS, json={"fields": over}))[1] == "catalog-exceeds-fields-limit"
    assert client.post(FIELDS, json={"fields": over[:44]}).status_code == 202


def test_create_fields_in_an_unknown_catalog_is_404(client: TestClient) -> None:
    response = client.post(
        "/catalogs/nope/fields", json={"fields": [{"name": "a", "type": "string"}]}
    )

    assert _error(response) == (404, "catalog-not-found", "Could not find catalog")


def test_create_fields_is_refused_while_catalog_storage_is_full(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.config.storage_limit = "reached"

    response = client.post(FIELDS, json={"fields": [{"name": "a", "type": "string"}]})

    assert _error(response)[:2] == (400, "company-size-limit-already-reached")


# --- delete field -------------------------------------------------------------------------


def test_a_deleted_field_leaves_the_schema_and_every_item_once_applied(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.config.async_delay_seconds = 3600.0

    response = client.delete(f"{FIELDS}/lat")

    assert (response.status_code, response.json()) == (202, {"message": "success"})
    assert "lat" in _field_names(client)
    _apply(sandbox)
    assert "lat" not in _field_names(client)
    items = client.get("/catalogs/stores/items").json()["items"]
    assert items
    assert all("lat" not in i for i in items)


@pytest.mark.parametrize("field_name", ["nope", "id"])
def test_deleting_a_field_the_catalog_lacks_or_its_id_is_invalid_field_name(
    client: TestClient, field_name: str
) -> None:
    response = client.delete(f"{FIELDS}/{field_name}")

    assert _error(response) == (404, "invalid-field-name", MESSAGES["invalid-field-name"])


def test_a_field_a_selection_uses_cannot_be_deleted_until_the_selection_is(
    client: TestClient, sandbox: Sandbox
) -> None:
    assert client.post(SELECTIONS, json=_selection()).status_code == 202
    _apply(sandbox)

    for field_name in ("open_sundays", "city"):  # a filter's field, the sort field
        response = client.delete(f"{FIELDS}/{field_name}")
        assert _error(response) == (
            400,
            "field-referenced-by-selection",
            MESSAGES["field-referenced-by-selection"],
        )

    assert client.delete(f"{SELECTIONS}/open-on-sundays").status_code == 202
    _apply(sandbox)
    assert client.delete(f"{FIELDS}/open_sundays").status_code == 202


def test_an_inventory_field_cannot_be_deleted(client: TestClient, sandbox: Sandbox) -> None:
    client.put("/_sandbox/catalogs/stores/inventory", json={"fields": ["lon"]})

    response = client.delete(f"{FIELDS}/lon")

    assert _error(response) == (400, "field-is-inventory", MESSAGES["field-is-inventory"])


def test_a_selection_accepted_after_its_fields_deletion_is_skipped_when_applied(
    client: TestClient, sandbox: Sandbox
) -> None:
    """Requests apply in acceptance order: the field is gone when the selection's turn comes."""
    sandbox.config.async_delay_seconds = 3600.0
    assert client.delete(f"{FIELDS}/city").status_code == 202
    assert client.post(SELECTIONS, json=_selection()).status_code == 202

    _apply(sandbox)

    assert "city" not in _field_names(client)
    assert _selections(client) == []


# --- create selection ---------------------------------------------------------------------


def test_a_selection_is_stored_with_its_definition_and_returns_the_matching_items(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.config.async_delay_seconds = 3600.0

    response = client.post(SELECTIONS, json=_selection(sort_order="desc", results_limit=2))

    assert (response.status_code, response.json()) == (202, {"message": "success"})
    assert _selections(client) == []
    _apply(sandbox)
    [stored] = _selections(client)
    assert stored["name"] == "open-on-sundays"
    assert stored["filters"] == [{"field": "open_sundays", "operator": "is", "value": True}]
    assert (stored["sort_field"], stored["sort_order"], stored["results_limit"]) == (
        "city",
        "desc",
        2,
    )
    # Seeded stores alternate open on Sundays: London, Berlin and Lisbon are.
    assert [i["city"] for i in stored["items"]] == ["London", "Lisbon"]


@pytest.mark.parametrize(
    ("overrides", "error_id"),
    [
        ({"name": "bad name"}, "invalid-selection"),
        ({"name": None}, "invalid-selection"),
        ({"external_id": None}, "invalid-selection"),
        ({"source": "Elsewhere"}, "invalid-selection"),
        ({"filters": [_f("city", "equals", "x")] * 5}, "too-many-filters"),
        ({"filters": [_f("nope", "equals", "x")]}, "selection-has-invalid-filter"),
        ({"filters": [_f("city", "greater than", "x")]}, "selection-has-invalid-filter"),
        ({"filters": [_f("lat", "less than", "north")]}, "selection-has-invalid-filter"),
        ({"filters": [{"field": "city", "operator": "equals"}]}, "selection-has-invalid-filter"),
        ({"results_limit": 0}, "selection-invalid-results-limit"),
        ({"results_limit": 51}, "selection-invalid-results-limit"),
        ({"results_limit": "5"}, "selection-invalid-results-limit"),
        ({"sort_order": None}, "invalid-sorting"),
        ({"sort_field": "nope"}, "invalid-sort-field"),
        ({"sort_order": "up"}, "invalid-sort-order"),
    ],
)
def test_create_selection_refuses_with_brazes_ids(
    client: TestClient, overrides: dict[str, Any], error_id: str
) -> None:
    body = _selection(**overrides)
    body["selection"] = {k: v for k, v in body["selection"].items() if v is not None}

    response = client.post(SELECTIONS, json=body)

    assert _error(response) == (400, error_id, MESSAGES[error_id])


def test_a_selection_filters_on_one_array_field_at_most(
    client: TestClient, sandbox: Sandbox
) -> None:
    fields = [{"name": "tags", "type": "array"}, {"name": "labels", "type": "array"}]
    client.post(FIELDS, json={"fields": fields})
    _apply(sandbox)
    filters = [
        _f("tags", "includes value", "a"),
        _f("labels", "does not include value", "b"),
    ]

    response = client.post(SELECTIONS, json=_selection(filters=filters))

    assert _error(response)[:2] == (400, "selection-contains-too-many-arrays")
    assert client.post(SELECTIONS, json=_selection(filters=filters[:1])).status_code == 202


def test_selection_names_are_unique_per_catalog_and_a_catalog_holds_30(
    client: TestClient, sandbox: Sandbox
) -> None:
    client.post(SELECTIONS, json=_selection())
    _apply(sandbox)
    taken = client.post(SELECTIONS, json=_selection())
    assert _error(taken)[:2] == (400, "selection-name-already-exists")

    for n in range(29):
        client.post(SELECTIONS, json=_selection(name=f"s{n}"))
    _apply(sandbox)
    assert len(_selections(client)) == 30
    assert _error(client.post(SELECTIONS, json=_selection(name="one-more")))[:2] == (
        400,
        "selection-limit-reached",
    )


# --- delete selection ---------------------------------------------------------------------


def test_a_deleted_selection_is_gone_once_applied(client: TestClient, sandbox: Sandbox) -> None:
    client.post(SELECTIONS, json=_selection())
    _apply(sandbox)
    sandbox.config.async_delay_seconds = 3600.0

    assert client.delete(f"{SELECTIONS}/open-on-sundays").status_code == 202
    assert len(_selections(client)) == 1
    _apply(sandbox)
    assert _selections(client) == []


def test_deleting_an_unknown_selection_is_invalid_selection(client: TestClient) -> None:
    response = client.delete(f"{SELECTIONS}/nope")

    assert _error(response) == (404, "invalid-selection", MESSAGES["invalid-selection"])


def test_deleting_a_catalog_deletes_its_selections(client: TestClient, sandbox: Sandbox) -> None:
    client.post(SELECTIONS, json=_selection())
    _apply(sandbox)

    assert client.delete("/catalogs/stores").status_code == 200

    assert _selections(client) == []


# --- limit group and permissions ----------------------------------------------------------


def test_the_four_endpoints_share_the_fields_and_selections_limit_group(
    sandbox: Sandbox,
) -> None:
    sandbox.config.rate_limits_enabled = True
    limit = sandbox.config.limits["catalog_fields_selections"].limit

    with sandbox_client(sandbox, REST) as client:
        calls = [
            lambda: client.post(FIELDS, json={"fields": []}),
            lambda: client.delete(f"{FIELDS}/nope"),
            lambda: client.post(SELECTIONS, json={}),
            lambda: client.delete(f"{SELECTIONS}/nope"),
        ]
        statuses = [calls[n % 4]().status_code for n in range(limit)]
        assert 429 not in statuses
        assert calls[0]().status_code == 429
        assert client.get("/catalogs").status_code == 200  # another group


# --- evaluation ---------------------------------------------------------------------------


def test_evaluation_applies_every_filter_then_sorts_with_missing_values_last() -> None:
    items: list[dict[str, Any]] = [
        {"id": "a", "price": 5, "tags": ["x"], "at": "2024-01-01T00:00:00.000Z"},
        {"id": "b", "price": 15, "tags": ["x", "y"], "at": "2025-01-01T00:00:00.000Z"},
        {"id": "c", "price": None, "tags": ["x"], "at": "2025-06-01T00:00:00.000Z"},
        {"id": "d", "price": 25, "tags": ["y"], "at": "2025-06-01T00:00:00.000Z"},
    ]
    definition: dict[str, Any] = {
        "filters": [
            _f("tags", "includes value", "x"),
            {"field": "at", "operator": "after", "value": "2024-06-01T00:00:00.000Z"},
        ],
        "sort_field": "price",
        "sort_order": "desc",
        "results_limit": 50,
    }

    assert [i["id"] for i in evaluate(items, definition)] == ["b", "c"]
    definition["filters"] = [{"field": "price", "operator": "does not equal", "value": 15}]
    assert [i["id"] for i in evaluate(items, definition)] == ["d", "a"]
    definition["results_limit"] = 1
    assert [i["id"] for i in evaluate(items, definition)] == ["d"]
