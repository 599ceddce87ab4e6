"""Catalog values as Braze has them today: object, array and geolocation fields in the forms,
`$add`/`$remove` on array fields, and times compared as instants (no false drift)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from catalogs import rules
from catalogs.models import Catalog, CatalogItem
from catalogs.services import (
    catalog_item_propose,
    catalog_mirror_refresh,
    catalog_sync_request,
    catalog_sync_step,
)
from console.audit.models import AuditEntry
from console.braze.client import BrazeClient
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_apply, change_request_approve
from console.roles import Role
from tests.factories import CatalogFactory, catalog_item_create
from tests.fixtures.sandbox import SandboxHandle

ClientFor = Callable[[Role | None], Client]

TYPED_FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "details", "type": "object"},
    {"name": "tags", "type": "array"},
    {"name": "location", "type": "geolocation"},
    {"name": "opened_at", "type": "time"},
]


# --- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("array", '["a", 1]', "list of text values"),
        ("array", '{"a": "b"}', "list of text values"),
        ("array", str([f"t{i}" for i in range(101)]).replace("'", '"'), "at most 100 values"),
        ("geolocation", "[-181, 40]", "Longitude must be between -180 and 180"),
        ("geolocation", "[-73.9, 91]", "Latitude must be between -90 and 90"),
        ("geolocation", "[40.7]", "Expected [longitude, latitude]"),
        ("geolocation", '["-73", "40"]', "Expected [longitude, latitude]"),
        ("object", "[1, 2]", "Expected a JSON object"),
    ],
)
def test_values_of_the_new_types_are_checked_like_braze(kind: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match="unable-to-coerce-value") as refused:
        rules.parse_value(kind, text)
    assert message in str(refused.value)


def test_values_of_the_new_types_are_parsed() -> None:
    assert rules.parse_value("array", '["red", "blue"]') == ["red", "blue"]
    assert rules.parse_value("geolocation", "[-73.988103, 40.779109]") == [-73.988103, 40.779109]
    assert rules.parse_value("object", '{"floor": 2}') == {"floor": 2}


def test_the_field_types_offered_include_object_array_and_geolocation() -> None:
    assert {"object", "array", "geolocation"} <= set(rules.FIELD_TYPES)
    assert rules.fields_errors([("id", "string"), ("where", "geolocation")]) == []


def test_a_bad_catalog_name_names_todays_error_id() -> None:
    assert "(invalid-catalog-name)" in rules.catalog_name_errors("bad name")[0]


def test_times_compare_as_instants() -> None:
    assert rules.same_value("time", "2026-03-01T09:30:00.000Z", "2026-03-01T09:30:00.000+00:00")
    assert rules.same_value("time", "2026-03-01T10:30:00+01:00", "2026-03-01T09:30:00Z")
    assert not rules.same_value("time", "2026-03-01T09:30:00Z", "2026-03-01T09:30:01Z")
    assert not rules.same_value("string", "2026-03-01T09:30:00Z", "2026-03-01T09:30:00+00:00")


def test_an_edited_array_becomes_add_and_remove() -> None:
    assert rules.array_ops_for(["a", "b"], ["a", "c"]) == {"$add": ["c"], "$remove": ["b"]}
    assert rules.array_ops_for(["a", "b"], ["b", "a"]) == ["b", "a"]  # a reorder: whole list


# --- the item form --------------------------------------------------------------------------


@pytest.fixture
def venues(db: None) -> Catalog:
    catalog: Catalog = CatalogFactory.create(name="venues", fields=TYPED_FIELDS)
    catalog_item_create(
        catalog,
        "v1",
        name="Hall",
        details={"floor": 2},
        tags=["red", "blue"],
        location=[-73.988103, 40.779109],
        opened_at="2026-03-01T09:30:00.000Z",
    )
    catalog.refresh_from_db()
    return catalog


def _form_data(**overrides: str) -> dict[str, str]:
    data = {
        "v_name": "Hall",
        "v_details": '{"floor": 2}',
        "v_tags": "red\nblue",
        "v_location__longitude": "-73.988103",
        "v_location__latitude": "40.779109",
        "v_opened_at": "2026-03-01T09:30:00.000Z",
    }
    return {**data, **overrides}


def test_the_item_form_has_inputs_for_each_new_type(client_for: ClientFor, venues: Catalog) -> None:
    url = reverse("catalogs:item_edit", args=["venues", "v1"])
    html = client_for(Role.EDITOR).get(url).content.decode()
    assert '<label for="id_v_location__longitude">location longitude</label>' in html
    assert '<label for="id_v_location__latitude">location latitude</label>' in html
    assert 'value="-73.988103"' in html
    assert "red\nblue</textarea>" in html  # one value per line
    assert "$add and $remove" in html


def test_a_new_item_with_the_new_types_is_proposed_typed(
    client_for: ClientFor, venues: Catalog
) -> None:
    data = _form_data(item_id="v2", v_tags="a\n\nb\n")
    client_for(Role.EDITOR).post(reverse("catalogs:item_create", args=["venues"]), data)
    cr = ChangeRequest.objects.get()
    assert cr.payload == {
        "name": "Hall",
        "details": {"floor": 2},
        "tags": ["a", "b"],
        "location": [-73.988103, 40.779109],
        "opened_at": "2026-03-01T09:30:00.000+00:00",
    }


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"v_location__longitude": "200"}, "v_location__longitude", "Longitude must be between"),
        ({"v_location__latitude": "-95"}, "v_location__latitude", "Latitude must be between"),
        ({"v_location__latitude": "north"}, "v_location__latitude", "latitude as a number"),
        ({"v_tags": "\n".join(f"t{i}" for i in range(101))}, "v_tags", "at most 100 values"),
        ({"v_details": "[1]"}, "v_details", "Expected a JSON object"),
    ],
)
def test_the_item_form_refuses_what_braze_would(
    client_for: ClientFor, venues: Catalog, overrides: dict[str, str], field: str, message: str
) -> None:
    url = reverse("catalogs:item_edit", args=["venues", "v1"])
    response = client_for(Role.EDITOR).post(url, _form_data(**overrides))
    assert message in response.content.decode()
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_the_item_form_keeps_the_whole_item_within_5000_characters(
    client_for: ClientFor, venues: Catalog
) -> None:
    """The sync pages Braze's single-item writes use: 5,000 characters per item."""
    data = _form_data(v_name="x" * 3000, v_tags="y" * 2500)
    response = client_for(Role.EDITOR).post(
        reverse("catalogs:item_edit", args=["venues", "v1"]), data
    )
    assert "Character limit for each item is 5,000 characters (items-too-large)" in (
        response.content.decode()
    )
    assert not ChangeRequest.objects.exists()


def test_an_edited_array_is_proposed_as_add_and_remove(
    client_for: ClientFor, venues: Catalog
) -> None:
    url = reverse("catalogs:item_edit", args=["venues", "v1"])
    client_for(Role.EDITOR).post(url, _form_data(v_tags="red\ngreen"))
    cr = ChangeRequest.objects.get()
    assert cr.payload == {"tags": {"$add": ["green"], "$remove": ["blue"]}}
    assert {
        "field": "tags",
        "before": ["red", "blue"],
        "after": ["red", "green"],
        "change": "changed",
    } in cr.diff


def test_an_unchanged_time_in_another_spelling_is_no_edit(
    client_for: ClientFor, venues: Catalog
) -> None:
    """The mirror has Braze's `…Z`; the form gives back `…+00:00`: the same instant."""
    url = reverse("catalogs:item_edit", args=["venues", "v1"])
    response = client_for(Role.EDITOR).post(url, _form_data())
    assert "Nothing changed" in response.content.decode()
    client_for(Role.EDITOR).post(url, _form_data(v_name="Big Hall"))
    assert ChangeRequest.objects.get().payload == {"name": "Big Hall"}


# --- against the sandbox ------------------------------------------------------------------


def _approve_and_apply(cr: ChangeRequest, reviewer: User) -> ChangeRequest:
    change_request_approve(actor=reviewer, change_request=cr)
    return change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)


def _sync(catalog: Catalog, client: BrazeClient) -> Any:
    sync = catalog_sync_request(catalog=catalog, actor=None)
    catalog_sync_step(sync_id=sync.pk, client=client)
    sync.refresh_from_db()
    return sync


@pytest.fixture
def braze_venues(
    db: None, braze: SandboxHandle, sync_client: BrazeClient, editor: User, reviewer: User
) -> Catalog:
    """A catalog with an array field in the sandbox, mirrored once (so later passes record
    external changes)."""
    fields = [f for f in TYPED_FIELDS if braze.profile == "current" or f["type"] != "geolocation"]
    sync_client.catalog_create(name="venues", description="", fields=fields)
    catalog_mirror_refresh(client=sync_client)
    catalog = Catalog.objects.get(name="venues")
    cr = catalog_item_propose(
        actor=editor,
        catalog=catalog,
        action="create",
        item_id="v1",
        values={"name": "Hall", "tags": ["red", "blue"]},
    )
    assert _approve_and_apply(cr, reviewer).state == ChangeState.APPLIED
    _sync(catalog, sync_client)
    catalog.refresh_from_db()
    return catalog


def test_a_time_the_console_wrote_is_no_external_change_on_the_next_sync(
    braze_venues: Catalog, sync_client: BrazeClient, editor: User, reviewer: User
) -> None:
    cr = catalog_item_propose(
        actor=editor,
        catalog=braze_venues,
        action="update",
        item_id="v1",
        values={"opened_at": rules.parse_value("time", "2026-03-01T10:30:00+01:00")},
    )
    assert _approve_and_apply(cr, reviewer).state == ChangeState.APPLIED
    held = sync_client.catalog_item_get(catalog_name="venues", item_id="v1")
    assert held["opened_at"] == "2026-03-01T09:30:00.000Z"  # Braze's spelling

    sync = _sync(braze_venues, sync_client)

    assert sync.items_changed == 0
    assert not AuditEntry.objects.filter(action="catalog_item.external_changed").exists()
    # And the next edit of that item is no conflict either.
    cr = catalog_item_propose(
        actor=editor,
        catalog=braze_venues,
        action="update",
        item_id="v1",
        values={"name": "Big Hall"},
    )
    assert _approve_and_apply(cr, reviewer).state == ChangeState.APPLIED, cr.error_message


def test_an_array_edit_from_the_form_reaches_braze(
    braze_venues: Catalog,
    sync_client: BrazeClient,
    client_for: ClientFor,
    reviewer: User,
    braze: SandboxHandle,
) -> None:
    """Current: sent as `$add`/`$remove`. Reference (no operators): Braze refuses them and
    the console sends the list they make instead."""
    url = reverse("catalogs:item_edit", args=["venues", "v1"])
    data = {"v_name": "Hall", "v_tags": "red\ngreen"}
    client_for(Role.EDITOR).post(url, data)
    cr = ChangeRequest.objects.get(action="update")
    assert cr.payload == {"tags": {"$add": ["green"], "$remove": ["blue"]}}

    cr = _approve_and_apply(cr, reviewer)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert sync_client.catalog_item_get(catalog_name="venues", item_id="v1")["tags"] == [
        "red",
        "green",
    ]
    assert CatalogItem.objects.get(catalog=braze_venues, item_id="v1").data["tags"] == [
        "red",
        "green",
    ]
    patches = [
        e
        for e in braze.admin.log(since=0)
        if e["method"] == "PATCH" and e["path"] == "/catalogs/venues/items/v1"
    ]
    expected = [200] if braze.profile == "current" else [400, 200]
    assert [e["status"] for e in patches] == expected
