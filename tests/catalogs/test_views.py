import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from catalogs.models import Catalog
from console.changes.models import ChangeRequest
from console.roles import Role
from tests.factories import CatalogFactory, catalog_item_create

ClientFor = Callable[[Role | None], Client]


@pytest.fixture
def shop(db: None) -> Catalog:
    catalog: Catalog = CatalogFactory.create(name="shop")
    rows = [
        ("boot-1", "Trail Boot", 120, True, "2026-01-03T10:00:00.000+00:00"),
        ("boot-2", "Urban Boot", 80.5, False, "2025-06-01T00:00:00.000+00:00"),
        ("hat-1", "Sun Hat", 15, True, "2026-02-10T08:30:00.000+00:00"),
        ("sock-1", "Wool Sock", 9.99, True, "2024-12-24T00:00:00.000+00:00"),
    ]
    for item_id, name, price, in_stock, released in rows:
        catalog_item_create(
            catalog, item_id, name=name, price=price, in_stock=in_stock, released_at=released
        )
    catalog.refresh_from_db()
    return catalog


def _ids(html: str) -> list[str]:
    return re.findall(r'/items/([\w-]+)/">\1<', html)


def _items(client: Client, catalog: Catalog, **params: str) -> str:
    response = client.get(reverse("catalogs:items", args=[catalog.name]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_catalog_list_shows_counts_fields_and_freshness(
    client_for: ClientFor, shop: Catalog
) -> None:
    html = client_for(Role.VIEWER).get(reverse("catalogs:list")).content.decode()
    assert "shop" in html
    assert "Not mirrored yet" in html


def test_the_detail_shows_the_schema_and_sample_items(client_for: ClientFor, shop: Catalog) -> None:
    html = client_for(Role.VIEWER).get(reverse("catalogs:detail", args=["shop"])).content.decode()
    assert "released_at" in html
    assert "time" in html
    assert "Trail Boot" in html


def test_search_finds_items_by_any_string_field_case_insensitively(
    client_for: ClientFor, shop: Catalog
) -> None:
    assert _ids(_items(client_for(Role.VIEWER), shop, q="BOOT")) == ["boot-1", "boot-2"]


def test_typed_filters_narrow_by_text_number_range_boolean_and_time(
    client_for: ClientFor, shop: Catalog
) -> None:
    viewer = client_for(Role.VIEWER)
    assert _ids(_items(viewer, shop, f_name="hat")) == ["hat-1"]
    assert _ids(_items(viewer, shop, f_price_min="10", f_price_max="100")) == ["boot-2", "hat-1"]
    assert _ids(_items(viewer, shop, f_in_stock="false")) == ["boot-2"]
    assert _ids(_items(viewer, shop, f_released_at_after="2026-01-01")) == ["boot-1", "hat-1"]
    assert _ids(_items(viewer, shop, f_released_at_before="2025-06-01")) == ["boot-2", "sock-1"]


def test_a_half_typed_filter_is_flagged_and_the_other_filters_still_apply(
    client_for: ClientFor, shop: Catalog
) -> None:
    html = _items(client_for(Role.VIEWER), shop, q="boot", f_released_at_after="2026-13")
    assert "Use an ISO 8601 date" in html
    assert _ids(html) == ["boot-1", "boot-2"]


def test_it_sorts_by_any_field_numbers_as_numbers(client_for: ClientFor, shop: Catalog) -> None:
    viewer = client_for(Role.VIEWER)
    assert _ids(_items(viewer, shop, sort="price")) == ["sock-1", "hat-1", "boot-2", "boot-1"]
    assert _ids(_items(viewer, shop, sort="-released_at")) == [
        "hat-1",
        "boot-1",
        "boot-2",
        "sock-1",
    ]


def test_keyset_pages_walk_forward_and_back_without_gaps(shop: Catalog) -> None:
    from catalogs.selectors import ItemQuery, catalog_item_page

    query = ItemQuery(sort="price")
    first = catalog_item_page(catalog=shop, query=query, limit=3)
    assert [i.item_id for i in first.items] == ["sock-1", "hat-1", "boot-2"]
    assert first.previous_before is None
    assert first.next_after
    second = catalog_item_page(catalog=shop, query=query, after=first.next_after, limit=3)
    assert [i.item_id for i in second.items] == ["boot-1"]
    assert second.next_after is None
    assert second.previous_before
    back = catalog_item_page(catalog=shop, query=query, before=second.previous_before, limit=3)
    assert [i.item_id for i in back.items] == ["sock-1", "hat-1", "boot-2"]


def test_htmx_requests_from_the_filter_bar_get_only_the_results(
    client_for: ClientFor, shop: Catalog
) -> None:
    response = client_for(Role.VIEWER).get(
        reverse("catalogs:items", args=["shop"]),
        {"q": "sock"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert "<h1>" not in html
    assert _ids(html) == ["sock-1"]


def test_the_column_chooser_limits_the_columns(client_for: ClientFor, shop: Catalog) -> None:
    html = _items(client_for(Role.VIEWER), shop, cols="price")
    headers = re.findall(r'<th scope="col"[^>]*>\s*<a [^>]*>([^<]+)</a>', html)
    assert headers == ["ID", "price"]


def test_the_export_streams_the_current_filter_as_csv(client_for: ClientFor, shop: Catalog) -> None:
    response = client_for(Role.VIEWER).get(
        reverse("catalogs:item_export", args=["shop"]), {"f_in_stock": "true", "sort": "price"}
    )
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["id", "name", "price", "in_stock", "released_at"]
    assert [r[0] for r in rows[1:]] == ["sock-1", "hat-1", "boot-1"]
    assert rows[1][3] == "true"


BAD_VALUES = [
    ({"item_id": "has space"}, "item_id", "invalid-ids"),
    ({"item_id": "x" * 251}, "item_id", "ids-too-large"),
    ({"v_price": "twelve"}, "v_price", "unable-to-coerce-value"),
    ({"v_in_stock": "maybe"}, "v_in_stock", "Select a valid choice"),
    ({"v_released_at": "yesterday"}, "v_released_at", "unable-to-coerce-value"),
    ({"v_name": "x" * 5001}, "v_name", "items-too-large"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_VALUES)
def test_each_kind_of_bad_value_is_refused_before_any_braze_call(
    client_for: ClientFor, shop: Catalog, bad: dict[str, str], field: str, message: str
) -> None:
    data = {
        "item_id": "new-1",
        "v_name": "New",
        "v_price": "1",
        "v_in_stock": "true",
        "v_released_at": "2026-01-01T00:00:00Z",
        **bad,
    }
    response = client_for(Role.EDITOR).post(reverse("catalogs:item_create", args=["shop"]), data)
    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors[field])
    assert ChangeRequest.objects.count() == 0  # nothing proposed, so nothing can reach Braze
    # What the user typed is still in the form.
    assert form[field].value() == data[field]


def test_an_edit_becomes_a_change_request_with_only_the_changed_fields(
    client_for: ClientFor, shop: Catalog
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("catalogs:item_edit", args=["shop", "hat-1"]),
        {
            "v_name": "Sun Hat",
            "v_price": "17.5",
            "v_in_stock": "true",
            "v_released_at": "2026-02-10T08:30:00.000+00:00",
        },
    )
    assert response.status_code == 302
    cr = ChangeRequest.objects.get()
    assert (cr.resource_type, cr.identifier, cr.action) == ("catalog_item", "shop/hat-1", "update")
    assert cr.payload == {"price": 17.5}
    assert (cr.base_snapshot or {})["price"] == 15


def test_an_edit_that_changes_nothing_is_refused(client_for: ClientFor, shop: Catalog) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("catalogs:item_edit", args=["shop", "hat-1"]),
        {
            "v_name": "Sun Hat",
            "v_price": "15",
            "v_in_stock": "true",
            "v_released_at": "2026-02-10T08:30:00.000+00:00",
        },
    )
    assert "Nothing changed" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_creating_an_existing_item_is_refused(client_for: ClientFor, shop: Catalog) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("catalogs:item_create", args=["shop"]), {"item_id": "hat-1"}
    )
    assert "item-already-exists" in response.content.decode()


def test_deleting_an_item_is_proposed(client_for: ClientFor, shop: Catalog) -> None:
    client_for(Role.EDITOR).post(reverse("catalogs:item_delete", args=["shop", "sock-1"]))
    cr = ChangeRequest.objects.get()
    assert (cr.action, cr.identifier, cr.payload) == ("delete", "shop/sock-1", {})


def test_the_item_page_lists_its_open_requests_to_those_who_may_see_change_requests(
    client_for: ClientFor, shop: Catalog
) -> None:
    client_for(Role.EDITOR).post(reverse("catalogs:item_delete", args=["shop", "sock-1"]))
    cr = ChangeRequest.objects.get()
    url = reverse("catalogs:item_detail", args=["shop", "sock-1"])
    for role in (Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN):
        assert cr.get_absolute_url() in client_for(role).get(url).content.decode(), role
    # Viewers browse content only: the change-request screens are closed to them.
    page = client_for(Role.VIEWER).get(url).content.decode()
    assert cr.get_absolute_url() not in page
    assert cr.title not in page


def test_deleting_a_catalog_needs_its_name_typed(client_for: ClientFor, shop: Catalog) -> None:
    editor = client_for(Role.EDITOR)
    url = reverse("catalogs:delete", args=["shop"])
    response = editor.post(url, {"confirm_name": "Shop"})
    assert "type shop exactly" in response.content.decode()
    assert not ChangeRequest.objects.exists()
    editor.post(url, {"confirm_name": "shop"})
    cr = ChangeRequest.objects.get()
    assert (cr.resource_type, cr.action, cr.identifier) == ("catalog", "delete", "shop")


def _create_catalog(client: Client, name: str, rows: list[tuple[str, str]]) -> str:
    data = {
        "name": name,
        "description": "d",
        "fields-TOTAL_FORMS": str(len(rows)),
        "fields-INITIAL_FORMS": str(len(rows)),
    }
    for n, (field, kind) in enumerate(rows):
        data[f"fields-{n}-name"], data[f"fields-{n}-type"] = field, kind
    return client.post(reverse("catalogs:create"), data).content.decode()


@pytest.mark.parametrize(
    ("name", "rows", "message"),
    [
        ("bad name", [("id", "string")], "invalid-catalog-name"),
        ("x" * 251, [("id", "string")], "catalog-name-too-large"),
        ("ok", [("name", "string"), ("id", "string")], "id-not-first-column"),
        ("ok", [("id", "number")], "id-not-first-column"),
        ("ok", [("id", "string"), ("a", "string"), ("a", "number")], "field-names-not-unique"),
        ("ok", [("id", "string"), ("a.b", "string")], "invalid-field-names"),
        ("ok", [("id", "string")] + [(f"f{i}", "string") for i in range(500)], "too-many-fields"),
    ],
)
def test_a_new_catalog_is_checked_against_brazes_rules(
    client_for: ClientFor, db: None, name: str, rows: list[tuple[str, str]], message: str
) -> None:
    html = _create_catalog(client_for(Role.EDITOR), name, rows)
    assert message in html
    assert not ChangeRequest.objects.exists()


def test_500_fields_are_allowed_by_default(client_for: ClientFor, db: None) -> None:
    rows = [("id", "string")] + [(f"f{i}", "string") for i in range(499)]
    _create_catalog(client_for(Role.EDITOR), "wide", rows)
    assert len(ChangeRequest.objects.get().payload["fields"]) == 500


def test_the_field_limit_is_configuration(
    client_for: ClientFor, db: None, settings: object
) -> None:
    settings.CATALOG_MAX_FIELDS = 30  # type: ignore[attr-defined]
    rows = [("id", "string")] + [(f"f{i}", "string") for i in range(30)]
    assert "Number of fields limit is 30 (too-many-fields)" in _create_catalog(
        client_for(Role.EDITOR), "wide", rows
    )
    assert not ChangeRequest.objects.exists()


def test_a_valid_catalog_is_proposed(client_for: ClientFor, db: None) -> None:
    _create_catalog(client_for(Role.EDITOR), "gifts", [("id", "string"), ("price", "number")])
    cr = ChangeRequest.objects.get()
    assert (cr.resource_type, cr.action, cr.identifier) == ("catalog", "create", "gifts")
    assert cr.payload["fields"] == [
        {"name": "id", "type": "string"},
        {"name": "price", "type": "number"},
    ]


def test_viewers_cannot_propose(client_for: ClientFor, shop: Catalog) -> None:
    response = client_for(Role.VIEWER).post(
        reverse("catalogs:item_edit", args=["shop", "hat-1"]), {"v_price": "1"}
    )
    assert response.status_code == 403


def test_each_listed_item_links_to_the_address_reverse_gives_it(
    client_for: ClientFor, shop: Catalog
) -> None:
    awkward = ["a b", "ü-ñ", "100%", "q?x#y", "semi;colon", "tilde~at@", "plus+eq=&", "<b>"]
    for item_id in awkward:
        catalog_item_create(shop, item_id, name="Odd", price=1)
    html = _items(client_for(Role.VIEWER), shop)
    for item_id in [*awkward, "boot-1"]:
        url = reverse("catalogs:item_detail", args=[shop.name, item_id])
        assert f'href="{escape(url)}"' in html
        assert client_for(Role.VIEWER).get(url).status_code == 200


# What each page costs in queries, however many rows it shows: the session, the user with
# their roles (groups and workspace roles, in the same query), the catalog, then the page's
# own read. One more per row (an N+1) fails these.
@pytest.mark.parametrize("fragment", [False, True])
def test_the_item_list_and_its_filter_fragment_take_four_queries(
    client_for: ClientFor,
    shop: Catalog,
    django_assert_num_queries: Callable[..., Any],
    fragment: bool,
) -> None:
    for i in range(30):
        catalog_item_create(shop, f"extra-{i:02d}", name=f"Extra {i}", price=i)
    client = client_for(Role.EDITOR)
    headers = {"HX-Request": "true", "HX-Target": "results"} if fragment else {}
    url = reverse("catalogs:items", args=[shop.name])
    # The page of items is one statement, its SET LOCAL included: no transaction of its own
    # (a savepoint and its release here, BEGIN and COMMIT in production).
    with django_assert_num_queries(4):
        response = client.get(url, {"q": "extra"} if fragment else {}, headers=headers)
    assert response.status_code == 200
    assert len(_ids(response.content.decode())) == (30 if fragment else 34)


def test_the_item_page_takes_six_queries_however_many_requests_are_open(
    client_for: ClientFor, shop: Catalog, django_assert_num_queries: Callable[..., Any]
) -> None:
    url = reverse("catalogs:item_delete", args=["shop", "sock-1"])
    for _ in range(3):
        client_for(Role.EDITOR).post(url)  # three people, three open requests
    client = client_for(Role.REVIEWER)
    # The session, the user with their roles, the catalog, the item, its open requests, and
    # the Reviewer's badge of requests awaiting them.
    with django_assert_num_queries(6):
        page = client.get(reverse("catalogs:item_detail", args=["shop", "sock-1"]))
    assert page.content.decode().count("/changes/") >= 3
