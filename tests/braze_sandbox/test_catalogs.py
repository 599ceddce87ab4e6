"""Catalog endpoints: the documented examples are accepted, documented errors are returned."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox

pytestmark = pytest.mark.usefixtures("unlimited")

RESTAURANTS = {
    "catalogs": [
        {
            "name": "restaurants",
            "description": "My Restaurants",
            "fields": [
                {"name": "id", "type": "string"},
                {"name": "Name", "type": "string"},
                {"name": "City", "type": "string"},
                {"name": "Cuisine", "type": "string"},
                {"name": "Rating", "type": "number"},
                {"name": "Loyalty_Program", "type": "boolean"},
                {"name": "Created_At", "type": "time"},
            ],
        }
    ]
}
EXAMPLE_ITEMS = [
    {
        "id": "restaurant1",
        "Name": "Restaurant1",
        "City": "New York",
        "Cuisine": "American",
        "Rating": 5,
        "Loyalty_Program": True,
        "Created_At": "2022-11-01T09:03:19.967+00:00",
    },
    {
        "id": "restaurant2",
        "Name": "Restaurant2",
        "City": "New York",
        "Cuisine": "American",
        "Rating": 10,
        "Loyalty_Program": True,
        "Created_At": "2022-11-02T09:03:19.967+00:00",
    },
    {
        "id": "restaurant3",
        "Name": "Restaurant3",
        "City": "New York",
        "Cuisine": "American",
        "Rating": 3,
        "Loyalty_Program": False,
        "Created_At": "2022-11-03T09:03:19.967+00:00",
    },
]


def catalog_with(name: str = "restaurants", **overrides: Any) -> dict[str, Any]:
    cat = {**RESTAURANTS["catalogs"][0], "name": name, **overrides}
    return {"catalogs": [cat]}


def error_id(response: Any) -> str:
    body = response.json()
    assert body["message"] == "Invalid Request"
    return str(body["errors"][0]["id"])


@pytest.fixture
def restaurants(client: TestClient, sandbox: Sandbox) -> TestClient:
    # The documented examples also use Open_Time and a Location object: the catalog has both.
    body = catalog_with()
    body["catalogs"][0]["fields"] = [
        *body["catalogs"][0]["fields"],
        {"name": "Open_Time", "type": "time"},
        {"name": "Location", "type": "object"},
    ]
    assert client.post("/catalogs", json=body).status_code == 201
    assert (
        client.post("/catalogs/restaurants/items", json={"items": EXAMPLE_ITEMS}).status_code == 202
    )
    sandbox.apply_due(time.time(), everything=True)
    return client


def test_it_creates_the_documented_example_catalog_and_answers_201(client: TestClient) -> None:
    response = client.post("/catalogs", json=RESTAURANTS)
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "success"
    created = body["catalogs"][0]
    assert created["name"] == "restaurants"
    assert created["num_items"] == 0
    assert created["fields"] == RESTAURANTS["catalogs"][0]["fields"]
    assert set(created) == {"description", "fields", "name", "num_items", "updated_at"}


def test_it_lists_catalogs_with_their_fields_and_item_counts(client: TestClient) -> None:
    response = client.get("/catalogs")
    assert response.status_code == 200
    by_name = {c["name"]: c for c in response.json()["catalogs"]}
    assert by_name["products"]["num_items"] == 120
    assert by_name["products"]["fields"][0] == {"name": "id", "type": "string"}


def test_it_refuses_a_duplicate_catalog_name(client: TestClient) -> None:
    client.post("/catalogs", json=RESTAURANTS)
    response = client.post("/catalogs", json=RESTAURANTS)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "id": "catalog-name-already-exists",
        "message": "A catalog with that name already exists",
        "parameters": ["name"],
        "parameter_values": ["restaurants"],
    }


@pytest.mark.one_profile("reference")
def test_it_refuses_a_catalog_with_more_than_30_fields(client: TestClient) -> None:
    fields = [{"name": "id", "type": "string"}] + [
        {"name": f"f{i}", "type": "string"} for i in range(30)
    ]
    response = client.post("/catalogs", json=catalog_with(fields=fields))
    assert response.status_code == 400
    assert error_id(response) == "too-many-fields"


@pytest.mark.one_profile("reference")
def test_it_accepts_a_catalog_with_exactly_30_fields(client: TestClient) -> None:
    fields = [{"name": "id", "type": "string"}] + [
        {"name": f"f{i}", "type": "number"} for i in range(29)
    ]
    assert client.post("/catalogs", json=catalog_with(fields=fields)).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": "x" * 251}, "catalog-name-too-large"),
        ({"description": "d" * 251}, "description-too-long"),
        (
            {"fields": [{"name": "Name", "type": "string"}, {"name": "id", "type": "string"}]},
            "id-not-first-column",
        ),
        ({"fields": [{"name": "id", "type": "number"}]}, "id-not-first-column"),
        (
            {
                "fields": [
                    {"name": "id", "type": "string"},
                    {"name": "a", "type": "string"},
                    {"name": "a", "type": "number"},
                ]
            },
            "field-names-not-unique",
        ),
        (
            {"fields": [{"name": "id", "type": "string"}, {"name": "a" * 251, "type": "string"}]},
            "field-names-too-large",
        ),
        (
            {"fields": [{"name": "id", "type": "string"}, {"name": "a b", "type": "string"}]},
            "invalid-field-names",
        ),
        (
            {"fields": [{"name": "id", "type": "string"}, {"name": "a", "type": "float"}]},
            "invalid-field-types",
        ),
        ({"fields": "id"}, "invalid-fields"),
    ],
)
def test_it_refuses_invalid_catalog_definitions_with_the_documented_error_id(
    client: TestClient, overrides: dict[str, Any], expected: str
) -> None:
    response = client.post("/catalogs", json=catalog_with(**overrides))
    assert response.status_code == 400
    assert error_id(response) == expected


def test_it_accepts_names_and_descriptions_of_exactly_250_characters(client: TestClient) -> None:
    body = catalog_with(name="n" * 250, description="d" * 250)
    assert client.post("/catalogs", json=body).status_code == 201


def test_it_refuses_more_than_one_catalog_per_request(client: TestClient) -> None:
    body = {"catalogs": [RESTAURANTS["catalogs"][0], catalog_with("other")["catalogs"][0]]}
    response = client.post("/catalogs", json=body)
    assert error_id(response) == "too-many-catalog-atoms"


def test_it_refuses_catalogs_that_are_not_an_array_of_objects(client: TestClient) -> None:
    assert error_id(client.post("/catalogs", json={"catalogs": "x"})) == "catalog-array-invalid"


def test_it_deletes_a_catalog_and_404s_an_unknown_one(client: TestClient) -> None:
    client.post("/catalogs", json=RESTAURANTS)
    assert client.delete("/catalogs/restaurants").json() == {"message": "success"}
    response = client.delete("/catalogs/restaurants")
    assert response.status_code == 404
    assert response.json()["errors"][0] == {
        "id": "catalog-not-found",
        "message": "Could not find catalog",
        "parameters": ["catalog_name"],
        "parameter_values": ["restaurants"],
    }


def test_bulk_create_answers_202_and_applies_after_the_delay(
    client: TestClient, sandbox: Sandbox
) -> None:
    sandbox.config.async_delay_seconds = 0.3
    client.post("/catalogs", json=RESTAURANTS)
    response = client.post("/catalogs/restaurants/items", json={"items": EXAMPLE_ITEMS})
    assert response.status_code == 202
    assert response.json() == {"message": "success"}
    assert client.get("/catalogs/restaurants/items/restaurant1").status_code == 404
    deadline = time.time() + 3
    while client.get("/catalogs/restaurants/items/restaurant1").status_code != 200:
        assert time.time() < deadline, "async create never applied"
        time.sleep(0.05)
    item = client.get("/catalogs/restaurants/items/restaurant2").json()["items"][0]
    # Times come back in UTC with "Z", as in "GET: List catalog item details".
    assert item == {**EXAMPLE_ITEMS[1], "Created_At": "2022-11-02T09:03:19.967Z"}


def test_the_documented_bulk_examples_are_accepted(restaurants: TestClient) -> None:
    delete_example = {
        "items": [{"id": "restaurant1"}, {"id": "restaurant2"}, {"id": "restaurant3"}]
    }
    edit = {"items": [{"id": "restaurant1", "Name": "Renamed", "Loyalty_Program": False}]}
    replace = {"items": [{"id": "restaurant9", "Name": "New", "Rating": 4}]}
    assert restaurants.patch("/catalogs/restaurants/items", json=edit).status_code == 202
    assert restaurants.put("/catalogs/restaurants/items", json=replace).status_code == 202
    assert (
        restaurants.request(
            "DELETE", "/catalogs/restaurants/items", json=delete_example
        ).status_code
        == 202
    )


def test_bulk_writes_apply_in_acceptance_order(restaurants: TestClient, sandbox: Sandbox) -> None:
    restaurants.patch(
        "/catalogs/restaurants/items", json={"items": [{"id": "restaurant1", "Rating": 1}]}
    )
    restaurants.patch(
        "/catalogs/restaurants/items", json={"items": [{"id": "restaurant1", "Rating": 2}]}
    )
    restaurants.put("/catalogs/restaurants/items", json={"items": [{"id": "new1", "Name": "N"}]})
    restaurants.request(
        "DELETE", "/catalogs/restaurants/items", json={"items": [{"id": "restaurant3"}]}
    )
    sandbox.apply_due(time.time(), everything=True)
    one = restaurants.get("/catalogs/restaurants/items/restaurant1").json()["items"][0]
    assert one["Rating"] == 2
    assert one["Name"] == "Restaurant1"  # PATCH merges
    assert restaurants.get("/catalogs/restaurants/items/new1").status_code == 200  # PUT upserts
    assert restaurants.get("/catalogs/restaurants/items/restaurant3").status_code == 404


def _bulk(n: int) -> list[dict[str, Any]]:
    return [{"id": f"item-{i}", "Name": f"N{i}"} for i in range(n)]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (_bulk(51), "request-includes-too-many-items"),
        ([{"Name": "no id"}], "items-missing-ids"),
        ([{"id": 7, "Name": "x"}], "ids-not-strings"),
        ([{"id": "a" * 251}], "ids-too-large"),
        ([{"id": "bad id!"}], "invalid-ids"),
        ([{"id": "a"}, {"id": "a"}], "ids-not-unique"),
        ([{"id": "a", "Nope": 1}], "invalid-fields"),
        ([{"id": "a", "Rating": "five"}], "unable-to-coerce-value"),
        ([{"id": "a", "Name": "x" * 5001}], "items-too-large"),
        ([{"id": "a", "Location": {"a.b": 1}}], "invalid-keys-in-value-object"),
        ("not-a-list", "item-array-invalid"),
    ],
)
def test_bulk_create_refuses_the_whole_request_with_the_documented_error(
    restaurants: TestClient, items: Any, expected: str
) -> None:
    response = restaurants.post("/catalogs/restaurants/items", json={"items": items})
    assert response.status_code == 400
    assert error_id(response) == expected


def test_bulk_create_reports_how_many_items_lack_ids(restaurants: TestClient) -> None:
    response = restaurants.post(
        "/catalogs/restaurants/items", json={"items": [{}, {}, {"id": "x"}]}
    )
    assert response.json()["errors"][0]["message"] == "There are 2 item(s) that do not have ids"


def test_bulk_create_accepts_exactly_50_items(restaurants: TestClient) -> None:
    response = restaurants.post("/catalogs/restaurants/items", json={"items": _bulk(50)})
    assert response.status_code == 202


def test_bulk_endpoints_404_an_unknown_catalog(client: TestClient) -> None:
    response = client.post("/catalogs/nope/items", json={"items": [{"id": "a"}]})
    assert response.status_code == 404
    assert error_id(response) == "catalog-not-found"


def test_it_refuses_a_nesting_deeper_than_50_levels(restaurants: TestClient) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(51):
        node["n"] = {}
        node = node["n"]
    response = restaurants.post(
        "/catalogs/restaurants/items", json={"items": [{"id": "deep", "Location": deep}]}
    )
    assert error_id(response) == "too-deep-nesting-in-value-object"


def test_the_documented_single_item_examples_are_accepted(restaurants: TestClient) -> None:
    create = {
        "items": [
            {
                "Name": "Restaurant1",
                "City": "New York",
                "Cuisine": "American",
                "Rating": 5,
                "Loyalty_Program": True,
                "Created_At": "2022-11-01T09:03:19.967+00:00",
            }
        ]
    }
    edit = {
        "items": [
            {
                "Name": "Restaurant",
                "Loyalty_Program": False,
                "Open_Time": "2021-09-03T09:03:19.967+00:00",
            }
        ]
    }
    replace = {
        "items": [
            {
                "Name": "Restaurant",
                "Loyalty_Program": False,
                "Location": {"Latitude": 33.6112, "Longitude": -117.8711},
                "Open_Time": "2021-09-03T09:03:19.967+00:00",
            }
        ]
    }
    restaurants.delete("/catalogs/restaurants/items/restaurant1")
    assert (
        restaurants.post("/catalogs/restaurants/items/restaurant1", json=create).status_code == 201
    )
    assert (
        restaurants.patch("/catalogs/restaurants/items/restaurant1", json=edit).status_code == 200
    )
    assert (
        restaurants.put("/catalogs/restaurants/items/restaurant1", json=replace).status_code == 200
    )
    got = restaurants.get("/catalogs/restaurants/items/restaurant1").json()
    assert got["items"][0]["Location"] == {"Latitude": 33.6112, "Longitude": -117.8711}
    assert "City" not in got["items"][0]  # PUT replaces the whole item
    assert restaurants.delete("/catalogs/restaurants/items/restaurant1").status_code == 202


def test_single_item_errors_match_the_documentation(restaurants: TestClient) -> None:
    missing = restaurants.get("/catalogs/restaurants/items/restaurant34")
    assert missing.status_code == 404
    assert missing.json()["errors"][0] == {
        "id": "item-not-found",
        "message": "Could not find item",
        "parameters": ["item_id"],
        "parameter_values": ["restaurant34"],
    }
    exists = restaurants.post(
        "/catalogs/restaurants/items/restaurant1", json={"items": [{"Name": "x"}]}
    )
    assert error_id(exists) == "item-already-exists"
    with_id = restaurants.patch(
        "/catalogs/restaurants/items/restaurant1", json={"items": [{"id": "x", "Name": "x"}]}
    )
    assert error_id(with_id) == "id-in-body"
    two = restaurants.patch(
        "/catalogs/restaurants/items/restaurant1", json={"items": [{"Name": "x"}, {"Name": "y"}]}
    )
    assert error_id(two) == "request-includes-too-many-items"
    unknown = restaurants.patch(
        "/catalogs/restaurants/items/restaurant1", json={"items": [{"Nope": "x"}]}
    )
    assert unknown.json()["errors"][0]["message"] == (
        "Some of the fields given do not exist in the catalog"
    )
    nobody = restaurants.patch(
        "/catalogs/restaurants/items/nobody", json={"items": [{"Name": "x"}]}
    )
    assert error_id(nobody) == "item-not-found"
    assert error_id(restaurants.get("/catalogs/restaurants/items/bad%20id")) == "invalid-ids"


def test_put_on_a_missing_single_item_creates_it(restaurants: TestClient) -> None:
    response = restaurants.put("/catalogs/restaurants/items/fresh", json={"items": [{"Name": "F"}]})
    assert response.status_code == 200
    assert restaurants.get("/catalogs/restaurants/items/fresh").json()["items"][0]["Name"] == "F"


def _links(response: Any) -> dict[str, str]:
    header = response.headers.get("link")
    if not header:
        return {}
    out = {}
    for part in header.split(","):
        target, rel = part.split(";")
        out[rel.strip().removeprefix('rel="').removesuffix('"')] = target.strip()[1:-1]
    return out


def test_pagination_walks_every_item_through_link_headers(client: TestClient) -> None:
    seen: list[str] = []
    path: str | None = "/catalogs/products/items"
    pages = 0
    while path:
        response = client.get(path)
        assert response.status_code == 200
        items = response.json()["items"]
        assert len(items) <= 50
        seen += [i["id"] for i in items]
        links = _links(response)
        if pages == 0:
            assert "prev" not in links
        path = links.get("next")
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    assert "next" not in links
    assert "prev" in links


def test_the_link_header_uses_relative_paths_and_the_documented_cursor_form(
    client: TestClient,
) -> None:
    first = client.get("/catalogs/products/items")
    assert first.headers["link"] == '</catalogs/products/items?cursor=c2tpcDo1MA==>; rel="next"'
    middle = client.get("/catalogs/products/items?cursor=c2tpcDo1MA==")
    assert middle.headers["link"] == (
        '</catalogs/products/items?cursor=c2tpcDow>; rel="prev",'
        '</catalogs/products/items?cursor=c2tpcDoxMDA=>; rel="next"'
    )


def test_a_catalog_of_50_items_or_fewer_has_no_link_header(client: TestClient) -> None:
    response = client.get("/catalogs/stores/items")
    assert "link" not in response.headers
    assert len(response.json()["items"]) == 6


def test_a_bad_cursor_is_refused_with_invalid_cursor(client: TestClient) -> None:
    response = client.get("/catalogs/products/items?cursor=bad-cursor")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "id": "invalid-cursor",
        "message": "'cursor' is not valid",
        "parameters": ["cursor"],
        "parameter_values": ["bad-cursor"],
    }
