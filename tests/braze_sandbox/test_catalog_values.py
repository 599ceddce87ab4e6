"""Catalog field types, the field limit and array operators, under each profile.

Current: "POST: Create catalog" (500 fields, `invalid-catalog-name`), "Creating a catalog"
(geolocation `[longitude, latitude]`, string arrays of at most 100 elements), and the PATCH
item pages (`$add`/`$remove` on array fields). Reference: the older collection (30 fields,
`invalid_catalog_name`, no geolocation, no operators).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox

pytestmark = pytest.mark.usefixtures("unlimited")

FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "details", "type": "object"},
    {"name": "tags", "type": "array"},
    {"name": "opened_at", "type": "time"},
]
GEO = {"name": "location", "type": "geolocation"}


def _catalog(name: str, fields: list[dict[str, str]]) -> dict[str, Any]:
    return {"catalogs": [{"name": name, "description": "", "fields": fields}]}


def _error(response: Any) -> str:
    assert response.status_code == 400, response.text
    return str(response.json()["errors"][0]["id"])


def _fields(n: int) -> list[dict[str, str]]:
    return [{"name": "id", "type": "string"}] + [
        {"name": f"f{i}", "type": "string"} for i in range(n - 1)
    ]


@pytest.fixture
def shop(client: TestClient, sandbox: Sandbox, braze_profile: str) -> TestClient:
    fields = FIELDS + ([GEO] if braze_profile == "current" else [])
    assert client.post("/catalogs", json=_catalog("shop", fields)).status_code == 201
    item: dict[str, Any] = {
        "id": "s1",
        "name": "One",
        "tags": ["red", "blue"],
        "details": {"floor": 2},
    }
    if braze_profile == "current":
        item["location"] = [-73.988103, 40.779109]
    assert client.post("/catalogs/shop/items", json={"items": [item]}).status_code == 202
    sandbox.apply_due(time.time(), everything=True)
    return client


def _get(client: TestClient, item_id: str = "s1") -> dict[str, Any]:
    response = client.get(f"/catalogs/shop/items/{item_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["items"][0])


# --- field types and the field limit ------------------------------------------------------


@pytest.mark.one_profile("current")
def test_current_accepts_object_array_and_geolocation_fields(client: TestClient) -> None:
    response = client.post("/catalogs", json=_catalog("typed", [*FIELDS, GEO]))
    assert response.status_code == 201
    assert {"name": "location", "type": "geolocation"} in response.json()["catalogs"][0]["fields"]


@pytest.mark.one_profile("reference")
def test_reference_refuses_the_geolocation_type(client: TestClient) -> None:
    response = client.post("/catalogs", json=_catalog("typed", [*FIELDS, GEO]))
    assert _error(response) == "invalid-field-types"


@pytest.mark.one_profile("current")
def test_current_accepts_500_fields_and_refuses_501(client: TestClient) -> None:
    assert client.post("/catalogs", json=_catalog("wide", _fields(500))).status_code == 201
    response = client.post("/catalogs", json=_catalog("wider", _fields(501)))
    assert _error(response) == "too-many-fields"
    assert response.json()["errors"][0]["message"] == "Number of fields limit is 500"


@pytest.mark.one_profile("reference")
def test_reference_keeps_the_30_field_limit(client: TestClient) -> None:
    assert client.post("/catalogs", json=_catalog("wide", _fields(30))).status_code == 201
    assert _error(client.post("/catalogs", json=_catalog("wider", _fields(31)))) == (
        "too-many-fields"
    )


def test_a_bad_catalog_name_has_the_profiles_error_id(
    client: TestClient, braze_profile: str
) -> None:
    response = client.post("/catalogs", json=_catalog("bad name!", FIELDS))
    expected = "invalid-catalog-name" if braze_profile == "current" else "invalid_catalog_name"
    assert _error(response) == expected


# --- values ---------------------------------------------------------------------------------


@pytest.mark.one_profile("current")
def test_values_of_the_new_types_are_stored_and_read_back(shop: TestClient) -> None:
    item = _get(shop)
    assert item["tags"] == ["red", "blue"]
    assert item["details"] == {"floor": 2}
    assert item["location"] == [-73.988103, 40.779109]


@pytest.mark.parametrize(
    "value",
    [
        ["ok", 7],
        [{"a": "b"}],
        ["x"] * 101,
        "red",
    ],
    ids=["a-number", "an-object", "101-elements", "not-a-list"],
)
def test_array_values_must_be_at_most_100_strings(shop: TestClient, value: Any) -> None:
    response = shop.post("/catalogs/shop/items", json={"items": [{"id": "s2", "tags": value}]})
    assert _error(response) == "unable-to-coerce-value"
    sync = shop.put("/catalogs/shop/items/s1", json={"items": [{"tags": value}]})
    assert _error(sync) == "unable-to-coerce-value"


def test_an_array_of_exactly_100_strings_is_accepted(shop: TestClient) -> None:
    tags = [f"t{i}" for i in range(100)]
    assert shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": tags}]}).status_code == (
        200
    )
    assert _get(shop)["tags"] == tags


@pytest.mark.one_profile("current")
@pytest.mark.parametrize(
    "value",
    [
        [-181, 40],
        [181, 40],
        [-73.9, 90.5],
        [-73.9, -91],
        [-73.9],
        [-73.9, 40.7, 1],
        ["-73", "40"],
        [True, 40],
        {"lon": -73.9, "lat": 40.7},
    ],
)
def test_geolocation_must_be_longitude_then_latitude_in_range(shop: TestClient, value: Any) -> None:
    response = shop.patch("/catalogs/shop/items/s1", json={"items": [{"location": value}]})
    assert _error(response) == "unable-to-coerce-value"


@pytest.mark.one_profile("current")
def test_geolocation_accepts_the_extremes(shop: TestClient) -> None:
    for value in ([-180, -90], [180, 90], [0, 0]):
        response = shop.patch("/catalogs/shop/items/s1", json={"items": [{"location": value}]})
        assert response.status_code == 200
        assert _get(shop)["location"] == value


def test_times_are_read_back_in_utc_with_z(shop: TestClient) -> None:
    """Both doc sets' GET examples return `…Z`, whatever offset the time was written with."""
    written = {"opened_at": "2026-03-01T10:30:00+01:00"}
    assert shop.patch("/catalogs/shop/items/s1", json={"items": [written]}).status_code == 200
    assert _get(shop)["opened_at"] == "2026-03-01T09:30:00.000Z"
    unix = {"opened_at": 1772357400}  # the same instant in Unix seconds
    assert shop.patch("/catalogs/shop/items/s1", json={"items": [unix]}).status_code == 200
    assert _get(shop)["opened_at"] == "2026-03-01T09:30:00.000Z"


# --- $add / $remove -------------------------------------------------------------------------

OPS = {"tags": {"$add": ["green", "red"], "$remove": ["blue"]}}


@pytest.mark.one_profile("current")
def test_sync_patch_adds_and_removes_array_values(shop: TestClient) -> None:
    response = shop.patch("/catalogs/shop/items/s1", json={"items": [OPS]})
    assert response.status_code == 200, response.text
    assert _get(shop)["tags"] == ["red", "green"]  # red was held already: added once


@pytest.mark.one_profile("current")
def test_async_patch_adds_and_removes_array_values(shop: TestClient, sandbox: Sandbox) -> None:
    response = shop.patch("/catalogs/shop/items", json={"items": [{"id": "s1", **OPS}]})
    assert response.status_code == 202, response.text
    sandbox.apply_due(time.time(), everything=True)
    assert _get(shop)["tags"] == ["red", "green"]


@pytest.mark.one_profile("current")
def test_add_to_an_empty_array_field_starts_a_list(shop: TestClient) -> None:
    shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": None}]})
    shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": {"$add": ["new"]}}]})
    assert _get(shop)["tags"] == ["new"]


@pytest.mark.one_profile("current")
def test_operators_are_for_patch_and_array_fields_only(shop: TestClient) -> None:
    add = {"$add": ["x"]}
    on_put = shop.put("/catalogs/shop/items/s1", json={"items": [{"tags": add}]})
    # Outside a PATCH an operator is just a key with `$` in it.
    assert _error(on_put) == "invalid-keys-in-value-object"
    on_post = shop.post("/catalogs/shop/items", json={"items": [{"id": "s9", "tags": add}]})
    assert _error(on_post) == "invalid-keys-in-value-object"
    on_object = shop.patch("/catalogs/shop/items/s1", json={"items": [{"details": add}]})
    assert _error(on_object) == "invalid-keys-in-value-object"
    not_strings = shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": {"$add": [1]}}]})
    assert _error(not_strings) == "unable-to-coerce-value"
    unknown = shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": {"$push": ["x"]}}]})
    assert _error(unknown) == "invalid-keys-in-value-object"


@pytest.mark.one_profile("current")
def test_an_add_past_100_values_is_refused_by_the_sync_patch(shop: TestClient) -> None:
    full = [f"t{i}" for i in range(100)]
    shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": full}]})
    response = shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": {"$add": ["x"]}}]})
    assert _error(response) == "unable-to-coerce-value"
    assert _get(shop)["tags"] == full


@pytest.mark.one_profile("reference")
def test_reference_refuses_array_operators(shop: TestClient) -> None:
    sync = shop.patch("/catalogs/shop/items/s1", json={"items": [OPS]})
    assert _error(sync) == "invalid-keys-in-value-object"
    bulk = shop.patch("/catalogs/shop/items", json={"items": [{"id": "s1", **OPS}]})
    assert _error(bulk) == "invalid-keys-in-value-object"


# --- items-too-large ------------------------------------------------------------------------


def test_sync_endpoints_limit_the_whole_item_to_5000_characters(shop: TestClient) -> None:
    """The sync pages: "Character limit for each item is 5,000 characters"."""
    half = "x" * 2600
    response = shop.put("/catalogs/shop/items/s1", json={"items": [{"name": half, "tags": [half]}]})
    assert _error(response) == "items-too-large"
    shop.patch("/catalogs/shop/items/s1", json={"items": [{"name": half}]})
    merged = shop.patch("/catalogs/shop/items/s1", json={"items": [{"tags": [half]}]})
    assert _error(merged) == "items-too-large"


def test_async_endpoints_limit_each_value_to_5000_characters(
    shop: TestClient, sandbox: Sandbox
) -> None:
    """The async pages: "Item values can't exceed 5,000 characters"."""
    half = "x" * 2600
    item = {"id": "s2", "name": half, "tags": [half]}
    assert shop.post("/catalogs/shop/items", json={"items": [item]}).status_code == 202
    sandbox.apply_due(time.time(), everything=True)
    assert _get(shop, "s2")["name"] == half
    too_long = {"id": "s3", "name": "x" * 5001}
    assert _error(shop.post("/catalogs/shop/items", json={"items": [too_long]})) == (
        "items-too-large"
    )
