"""The client against the Braze sandbox over real HTTP (the sandbox is the referee)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from console.braze.client import BrazeClient, RetryPolicy, parse_link_header
from console.braze.errors import (
    BrazeBadResponse,
    BrazeError,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeServerError,
    BrazeTimeout,
    BrazeUnauthorized,
    BrazeValidationError,
    describe_error,
)
from console.braze.limiter import RateLimiter
from console.braze.limiter.headers import parse_retry_after
from tests.console.braze.helpers import make_client, make_limits, try_acquire_once

SCALE = 30.0  # sandbox and client clocks: a 60 s window lasts 2 s


@pytest.fixture
def client(braze_sandbox: Any, prefix: str) -> BrazeClient:
    return make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        scim_token=braze_sandbox.scim_token,
        limits=make_limits(),
        prefix=prefix,
    )


def own_requests(sandbox: Any, since: float, path_part: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.admin.log(since=since) if path_part in e["path"]]


# --- every operation ----------------------------------------------------------------------


def test_it_lists_creates_and_deletes_catalogs(client: BrazeClient) -> None:
    assert {"products", "stores"} <= {c.name for c in client.catalog_list()}
    created = client.catalog_create(
        name="menu",
        description="Menu",
        fields=[{"name": "id", "type": "string"}, {"name": "price", "type": "number"}],
    )
    assert created.name == "menu"
    assert ("price", "number") in {(f.name, f.type) for f in created.fields}
    client.catalog_delete(name="menu")
    assert "menu" not in {c.name for c in client.catalog_list()}


def test_it_creates_reads_edits_replaces_and_deletes_one_item(client: BrazeClient) -> None:
    values = {
        "city": "Rome",
        "lat": 41.9,
        "lon": 12.5,
        "open_sundays": True,
        "opened_at": "2020-01-01T00:00:00Z",
    }
    client.catalog_item_create(catalog_name="stores", item_id="store-rome", values=values)
    assert client.catalog_item_get(catalog_name="stores", item_id="store-rome")["city"] == "Rome"
    client.catalog_item_edit(catalog_name="stores", item_id="store-rome", values={"city": "Roma"})
    item = client.catalog_item_get(catalog_name="stores", item_id="store-rome")
    assert (item["city"], item["lat"]) == ("Roma", 41.9)
    client.catalog_item_replace(
        catalog_name="stores", item_id="store-rome", values={**values, "city": "R"}
    )
    assert client.catalog_item_get(catalog_name="stores", item_id="store-rome")["city"] == "R"
    client.catalog_item_delete(catalog_name="stores", item_id="store-rome")
    with pytest.raises(BrazeNotFound):
        client.catalog_item_get(catalog_name="stores", item_id="store-rome")


def test_it_sends_bulk_item_writes_that_braze_applies_later(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    row = {
        "city": "X",
        "lat": 1.0,
        "lon": 2.0,
        "open_sundays": False,
        "opened_at": "2020-01-01T00:00:00Z",
    }
    client.catalog_items_bulk_create(
        catalog_name="stores", items=[{"id": f"bulk-{n}", **row} for n in range(3)]
    )
    client.catalog_items_bulk_edit(catalog_name="stores", items=[{"id": "bulk-0", "city": "E"}])
    client.catalog_items_bulk_replace(
        catalog_name="stores", items=[{"id": "bulk-1", **row, "city": "R"}]
    )
    client.catalog_items_bulk_delete(catalog_name="stores", item_ids=["bulk-2"])
    braze_sandbox.admin.flush_async()
    items = {i["id"]: i for i in client.catalog_item_list(catalog_name="stores")}
    assert items["bulk-0"]["city"] == "E"
    assert items["bulk-1"]["city"] == "R"
    assert "bulk-2" not in items


def test_it_refuses_a_bulk_request_over_50_items_without_spending_quota(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    since = time.time()
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_items_bulk_delete(
            catalog_name="stores", item_ids=[f"i{n}" for n in range(51)]
        )
    assert caught.value.error_ids == ("request-includes-too-many-items",)
    assert own_requests(braze_sandbox, since, "/catalogs/") == []


def test_pagination_walks_every_page_through_the_link_header(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    braze_sandbox.admin.reset(products=120)
    first = client.catalog_item_page(catalog_name="products")
    assert len(first.items) == 50
    assert first.next_cursor
    ids = [item["id"] for item in client.catalog_item_list(catalog_name="products")]
    assert len(ids) == 120
    assert len(set(ids)) == 120


def test_it_lists_reads_creates_and_updates_email_templates(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    braze_sandbox.admin.add_tags(["promo"])
    template_id = client.email_template_create(
        template_name="welcome_v2", subject="Hi", body="<p>Hello</p>", tags=["promo"]
    )
    client.email_template_update(email_template_id=template_id, subject="Hello there")
    info = client.email_template_info(email_template_id=template_id)
    assert (info.template_name, info.subject, info.tags) == ("welcome_v2", "Hello there", ["promo"])
    listed = client.email_template_list(limit=1000)
    assert template_id in {t.email_template_id for t in listed}
    assert client.email_template_list(modified_after="2999-01-01T00:00:00") == []


def test_it_lists_reads_creates_and_updates_content_blocks(client: BrazeClient) -> None:
    created = client.content_block_create(name="footer_v2", content="<p>Bye</p>", state="draft")
    assert created.liquid_tag == "{{content_blocks.${footer_v2}}}"
    client.content_block_update(
        content_block_id=created.content_block_id, name="footer_v2", content="<p>Ciao</p>"
    )
    info = client.content_block_info(
        content_block_id=created.content_block_id, include_inclusion_data=True
    )
    assert info.content == "<p>Ciao</p>"
    assert info.inclusion_data == []
    assert created.content_block_id in {b.content_block_id for b in client.content_block_list()}


def test_it_lists_views_creates_updates_preference_centers_and_makes_user_urls(
    client: BrazeClient,
) -> None:
    created = client.preference_center_create(
        name="newsletter_prefs",
        preference_center_page_html="<form></form>",
        confirmation_page_html="<p>Saved</p>",
        state="draft",
    )
    pc_id = created.preference_center_api_id
    client.preference_center_update(
        preference_center_id=pc_id,
        preference_center_page_html="<form>v2</form>",
        confirmation_page_html="<p>Saved</p>",
        preference_center_title="Your emails",
    )
    viewed = client.preference_center_view(preference_center_id=pc_id)
    assert (viewed.name, viewed.preference_center_page_html) == (
        "newsletter_prefs",
        "<form>v2</form>",
    )
    assert viewed.preference_center_title == "Your emails"
    assert pc_id in {p.preference_center_api_id for p in client.preference_center_list()}
    url = client.preference_center_user_url(preference_center_id=pc_id, user_id="user-1")
    assert url.startswith("http")


def test_it_exports_users_by_external_id_in_their_own_limit_group(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    since = time.time()
    export = client.users_export_ids(
        external_ids=["customer-1002", "no-such-customer"],
        fields_to_export=["external_id", "first_name", "custom_attributes"],
    )
    assert export.users == (
        {
            "external_id": "customer-1002",
            "first_name": "Tomás",
            "custom_attributes": {"loyalty_points": 80, "tier": "bronze"},
        },
    )
    assert export.invalid_user_ids == ("no-such-customer",)
    [sent] = own_requests(braze_sandbox, since, "/users/export/ids")
    assert (sent["method"], sent["group"]) == ("POST", "users_export_ids")


def test_it_reads_translations_by_locale_and_none_for_a_message_without_them(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    block_id = client.content_block_list(limit=1)[0].content_block_id
    template_id = client.email_template_list(limit=1)[0].email_template_id
    locale = {"uuid": "u-1", "name": "es-MX", "country": "MX", "language": "es"}
    braze_sandbox.admin.set_translations(
        "content_block", block_id, [{"locale": locale, "translation_map": {"hi": "Hola"}}]
    )

    [spanish] = client.content_block_translations_get(content_block_id=block_id)

    assert (spanish.name, spanish.language, spanish.country) == ("es-MX", "es", "MX")
    assert spanish.translation_map == {"hi": "Hola"}
    assert client.email_template_translations_get(email_template_id=template_id) == ()


def test_a_users_export_of_no_or_too_many_ids_is_refused_before_sending(
    client: BrazeClient,
) -> None:
    for ids in ([], [f"u{n}" for n in range(51)]):
        with pytest.raises(ValueError, match="between 1 and 50 external ids"):
            client.users_export_ids(external_ids=ids, fields_to_export=["external_id"])


def test_a_key_without_users_export_ids_is_forbidden(braze_sandbox: Any, prefix: str) -> None:
    key = braze_sandbox.admin.create_key(["catalogs.get"])
    client = make_client(
        base_url=braze_sandbox.url, api_key=key, limits=make_limits(), prefix=prefix
    )
    with pytest.raises(BrazeForbidden) as caught:
        client.users_export_ids(external_ids=["customer-1001"], fields_to_export=["external_id"])
    assert caught.value.permission == "users.export.ids"


def test_it_searches_gets_creates_updates_and_removes_dashboard_users(
    client: BrazeClient,
) -> None:
    permissions = {
        "companyPermissions": [],
        "appGroup": [{"appGroupName": "Demo", "appGroupPermissions": ["basic_access"]}],
    }
    user = client.scim_user_create(
        email="new.person@example.com",
        given_name="New",
        family_name="Person",
        department="marketing",
        permissions=permissions,
    )
    found = client.scim_user_search(email="new.person@example.com")
    assert found is not None
    assert found.id == user.id
    client.scim_user_update(
        user_id=user.id,
        given_name="Newer",
        family_name="Person",
        department="finance",
        permissions=permissions,
    )
    got = client.scim_user_get(user_id=user.id)
    assert (got.given_name, got.department) == ("Newer", "finance")
    client.scim_user_remove(user_id=user.id)
    assert client.scim_user_search(email="new.person@example.com") is None


# --- errors: each documented error becomes the right exception with Braze's id ------------


def test_catalog_name_already_exists_is_a_validation_error_with_braze_id(
    client: BrazeClient,
) -> None:
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_create(
            name="stores", description="dup", fields=[{"name": "id", "type": "string"}]
        )
    assert caught.value.error_ids == ("catalog-name-already-exists",)
    assert [(d.id, d.parameters) for d in caught.value.errors] == [
        ("catalog-name-already-exists", ("name",))
    ]


def test_invalid_item_ids_are_a_validation_error_naming_the_item(client: BrazeClient) -> None:
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_items_bulk_create(
            catalog_name="stores", items=[{"id": "bad id!", "city": "x"}]
        )
    assert "invalid-ids" in caught.value.error_ids


def test_an_expired_cursor_is_a_validation_error(client: BrazeClient) -> None:
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_item_page(catalog_name="stores", cursor="not-a-cursor")
    assert caught.value.error_ids == ("invalid-cursor",)


@pytest.mark.parametrize(
    ("state", "error_id"),
    [("reached", "company-size-limit-already-reached"), ("surge", "company-size-limit-surge")],
)
def test_a_full_catalog_storage_is_a_validation_error_that_says_so(
    client: BrazeClient, braze_sandbox: Any, state: str, error_id: str
) -> None:
    braze_sandbox.admin.set_storage_limit(state)
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_items_bulk_replace(catalog_name="stores", items=[{"id": "s", "city": "x"}])
    assert caught.value.storage_limit == error_id
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_item_edit(catalog_name="stores", item_id="store-paris", values={"city": "x"})
    assert caught.value.storage_limit == error_id
    text = describe_error(caught.value)
    assert "catalog storage" in text
    assert "invalid" not in text
    assert text.endswith(f"Braze error: {error_id}.")


def test_other_refusals_are_not_taken_for_a_full_storage(client: BrazeClient) -> None:
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_items_bulk_create(catalog_name="stores", items=[{"id": "bad id!"}])
    assert caught.value.storage_limit is None


def test_missing_catalogs_items_templates_and_users_are_not_found(client: BrazeClient) -> None:
    with pytest.raises(BrazeNotFound) as caught:
        client.catalog_delete(name="no_such_catalog")
    assert caught.value.error_ids == ("catalog-not-found",)
    with pytest.raises(BrazeNotFound) as caught:
        client.catalog_item_get(catalog_name="stores", item_id="store-atlantis")
    assert caught.value.error_ids == ("item-not-found",)
    with pytest.raises(BrazeNotFound):
        client.email_template_info(email_template_id="nope")
    with pytest.raises(BrazeNotFound):
        client.scim_user_get(user_id="nope")


def test_unknown_and_deleted_content_blocks_are_not_found_in_the_profiles_wording(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    workspace = "App Group" if braze_sandbox.reference else "workspace"
    with pytest.raises(BrazeNotFound) as caught:
        client.content_block_info(content_block_id="no-such-block")
    assert caught.value.error_ids == (f"Content Block ID is invalid for this {workspace}",)
    block = client.content_block_list()[0]
    braze_sandbox.admin.client.patch(
        f"/content_blocks/{block.content_block_id}", json={"deleted": True}
    ).raise_for_status()
    with pytest.raises(BrazeNotFound):
        client.content_block_info(content_block_id=block.content_block_id)


@pytest.mark.parametrize("kind", ["html", "shape"])
def test_an_unreadable_success_answer_is_a_typed_error(
    client: BrazeClient, braze_sandbox: Any, kind: str
) -> None:
    braze_sandbox.admin.set_injection(malformed_rate=1.0, malformed=kind)
    with pytest.raises(BrazeBadResponse) as caught:
        client.content_block_list()
    assert caught.value.status == 200
    with pytest.raises(BrazeBadResponse) as caught:
        client.content_block_create(name="landed_anyway", content="<p>x</p>")
    assert caught.value.maybe_applied
    braze_sandbox.admin.set_injection(malformed_rate=0.0)
    assert "landed_anyway" in {b.name for b in client.content_block_list()}


def test_malformed_liquid_is_a_validation_error_with_braze_message(client: BrazeClient) -> None:
    with pytest.raises(BrazeValidationError) as caught:
        client.content_block_create(name="broken", content="{% if %}")
    assert caught.value.error_ids == ("Content contains malformed liquid",)


def test_a_duplicate_dashboard_user_is_a_validation_error(client: BrazeClient) -> None:
    permissions: dict[str, list[str]] = {"companyPermissions": [], "appGroup": []}
    kwargs: dict[str, Any] = {
        "given_name": "A",
        "family_name": "B",
        "department": "marketing",
        "permissions": permissions,
    }
    client.scim_user_create(email="dup@example.com", **kwargs)
    with pytest.raises(BrazeValidationError) as caught:
        client.scim_user_create(email="dup@example.com", **kwargs)
    assert caught.value.status == 409
    assert caught.value.error_ids == ("User already exists in the database.",)


def test_a_wrong_key_is_unauthorized(braze_sandbox: Any, prefix: str) -> None:
    client = make_client(
        base_url=braze_sandbox.url, api_key="wrong", limits=make_limits(), prefix=prefix
    )
    with pytest.raises(BrazeUnauthorized):
        client.catalog_list()


def test_a_key_without_the_permission_is_forbidden_and_names_it(
    braze_sandbox: Any, prefix: str
) -> None:
    key = braze_sandbox.admin.create_key(["catalogs.get"])
    client = make_client(
        base_url=braze_sandbox.url, api_key=key, limits=make_limits(), prefix=prefix
    )
    assert client.catalog_list()
    with pytest.raises(BrazeForbidden) as caught:
        client.content_block_list()
    assert caught.value.permission == "content_blocks.list"


def test_a_server_error_on_a_create_is_not_retried(client: BrazeClient, braze_sandbox: Any) -> None:
    braze_sandbox.admin.set_injection(error_rate=1.0, error_status=500)
    since = time.time()
    with pytest.raises(BrazeServerError) as caught:
        client.content_block_create(name="never", content="x")
    assert caught.value.status == 500
    assert len(own_requests(braze_sandbox, since, "/content_blocks/create")) == 1


def test_a_server_error_on_a_safe_operation_is_retried_then_reported(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    braze_sandbox.admin.set_injection(error_rate=1.0, error_status=503)
    since = time.time()
    with pytest.raises(BrazeServerError):
        client.content_block_list()
    assert len(own_requests(braze_sandbox, since, "/content_blocks/list")) == 3


def test_a_transient_server_error_on_a_safe_operation_is_retried_until_it_succeeds(
    client: BrazeClient, braze_sandbox: Any
) -> None:
    braze_sandbox.admin.set_injection(error_rate=0.5, error_status=500)
    retrying = client.with_options()
    retrying.retry = RetryPolicy(attempts=30, backoff_base=0.001, backoff_cap=0.01)
    since = time.time()
    for _ in range(5):
        assert retrying.content_block_list()
    statuses = [e["status"] for e in own_requests(braze_sandbox, since, "/content_blocks/list")]
    assert statuses.count(200) == 5


def test_a_timeout_on_a_safe_operation_is_retried(braze_sandbox: Any, prefix: str) -> None:
    braze_sandbox.admin.set_injection(timeout_rate=1.0, timeout_mode="hold", timeout_seconds=1.0)
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(),
        prefix=prefix,
        read_timeout=0.3,
    )
    since = time.time()
    with pytest.raises(BrazeTimeout) as caught:
        client.email_template_list()
    assert caught.value.maybe_applied is False  # a read changes nothing
    time.sleep(1.2)  # the sandbox logs a held request when it finally answers
    assert len(own_requests(braze_sandbox, since, "/templates/email/list")) == 3


def test_a_timeout_on_a_create_is_not_retried_and_may_have_landed(
    braze_sandbox: Any, prefix: str
) -> None:
    braze_sandbox.admin.set_injection(timeout_rate=1.0, timeout_mode="drop")
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(),
        prefix=prefix,
        read_timeout=0.5,
    )
    since = time.time()
    with pytest.raises(BrazeTimeout) as caught:
        client.email_template_create(template_name="t", subject="s", body="b")
    assert caught.value.maybe_applied is True
    assert len(own_requests(braze_sandbox, since, "/templates/email/create")) == 1


# --- 429s ---------------------------------------------------------------------------------


def fill_quota(sandbox: Any, path: str, times: int) -> None:
    """Another integration in the workspace spends the quota behind the console's back."""
    with sandbox.client() as other:
        for _ in range(times):
            assert other.get(path).status_code == 200


def early_in_a_window(seconds: float) -> None:
    """Wait for the start of a fixed server window, so a few quick requests share one."""
    into = time.time() % seconds
    if into > seconds / 4:
        time.sleep(seconds - into + 0.02)


def test_a_429_blocks_the_group_for_every_process_until_the_reset_then_succeeds(
    braze_sandbox: Any, prefix: str
) -> None:
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm="fixed", limits={"catalogs_sync": {"limit": 2}}
    )
    spec = {"limits": {"clock_scale": SCALE}, "prefix": prefix, "group": "catalog_items_sync"}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        # Started (and its imports done) before the block, which may last only a second.
        pool.apply(try_acquire_once, (spec,))
        early_in_a_window(60 / SCALE)
        fill_quota(braze_sandbox, "/catalogs", 2)
        client = make_client(
            base_url=braze_sandbox.url,
            api_key=braze_sandbox.api_key,
            limits=make_limits(clock_scale=SCALE),
            prefix=prefix,
            max_wait=0.0,
        )
        with pytest.raises(BrazeRateLimited) as caught:
            client.catalog_list()
        assert caught.value.from_braze is True
        assert 0 < caught.value.retry_after <= 60 / SCALE + 1

        # Another process sees the same block, without having sent anything.
        allowed, wait = pool.apply(try_acquire_once, ({**spec, "group": "catalogs_sync"},))
    assert not allowed
    assert wait > 0

    since = time.time()
    patient = client.with_options(max_wait=5.0)
    assert patient.catalog_list()  # waits out the block, then succeeds
    log = own_requests(braze_sandbox, since, "/catalogs")
    assert [e["status"] for e in log] == [200]
    assert log[0]["t"] >= caught.value.retry_at - 0.05


def test_a_429_is_retried_after_the_reset_when_the_wait_fits(
    braze_sandbox: Any, prefix: str
) -> None:
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm="sliding", limits={"catalog_items_sync": {"limit": 2}}
    )
    fill_quota(braze_sandbox, "/catalogs/stores/items/store-paris", 2)
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(clock_scale=SCALE),
        prefix=prefix,
        max_wait=5.0,
    )
    assert client.catalog_item_get(catalog_name="stores", item_id="store-paris")
    statuses = [e["status"] for e in braze_sandbox.admin.log(group="catalog_items_sync")]
    assert statuses == [200, 200, 429, 200]


def test_remaining_zero_from_another_integration_blocks_the_group(
    braze_sandbox: Any, prefix: str
) -> None:
    braze_sandbox.admin.configure(
        clock_scale=SCALE, algorithm="fixed", limits={"catalogs_sync": {"limit": 1}}
    )
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=braze_sandbox.api_key,
        limits=make_limits(clock_scale=SCALE),
        prefix=prefix,
        max_wait=0.0,
    )
    early_in_a_window(60 / SCALE)
    client.catalog_list()  # Braze answers remaining: 0 although our limiter allows 5
    with pytest.raises(BrazeRateLimited) as caught:
        client.catalog_list()
    assert caught.value.from_braze is False  # held back locally: no 429 was spent
    assert all(e["status"] != 429 for e in braze_sandbox.admin.log(group="catalogs_sync"))


# --- small parsers ----------------------------------------------------------------------


def test_link_header_parsing_reads_relative_urls_without_spaces() -> None:
    header = '</catalogs/x/items?cursor=a>; rel="prev",</catalogs/x/items?cursor=b>; rel="next"'
    assert parse_link_header(header) == {
        "prev": "/catalogs/x/items?cursor=a",
        "next": "/catalogs/x/items?cursor=b",
    }


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7", now=0) == 7
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60
    assert parse_retry_after("soon", now=0) is None


def test_a_next_link_to_another_host_is_followed_on_our_host_only(prefix: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "cursor" in request.url.query.decode():
            return httpx.Response(200, json={"items": [{"id": "b"}]})
        link = '<https://evil.example/catalogs/x/items?cursor=c>; rel="next"'
        return httpx.Response(200, json={"items": [{"id": "a"}]}, headers={"Link": link})

    from tests.console.braze.helpers import make_limiter

    client = BrazeClient(
        http=httpx.Client(
            base_url="https://rest.iad-03.braze.com", transport=httpx.MockTransport(handler)
        ),
        limiter=make_limiter(limits=make_limits(), prefix=prefix),
        api_key="k",
    )
    assert [i["id"] for i in client.catalog_item_list(catalog_name="x")] == ["a", "b"]
    assert {r.url.host for r in seen} == {"rest.iad-03.braze.com"}


def test_rate_limiter_is_shared_by_clones(client: BrazeClient) -> None:
    background = client.with_options(lane="background", max_wait=0)
    assert isinstance(background.limiter, RateLimiter)
    assert background.limiter is client.limiter
    assert (background.lane, client.lane) == ("background", "interactive")


@pytest.mark.parametrize("base", ["https://rest.iad-03.braze.com", "http://127.0.0.1:9400/sub/"])
def test_bulk_writes_through_the_transport_send_what_the_http_client_sends(
    prefix: str, base: str
) -> None:
    """A client given the transport under its HTTP client sends bulk item writes to it
    directly: the same request, byte for byte, and the same answers and errors."""
    from tests.console.braze.helpers import make_limiter

    def braze(via: str, seen: list[httpx.Request]) -> BrazeClient:
        answers: Iterator[httpx.Response | Exception] = iter(
            [
                httpx.Response(202, json={"message": "success"}),
                httpx.Response(400, json={"errors": [{"id": "invalid-fields", "message": "x"}]}),
                httpx.ConnectError("refused"),
                httpx.ReadTimeout("slow"),
            ]
        )

        def handler(request: httpx.Request) -> httpx.Response:
            request.read()
            seen.append(request)
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer

        transport = httpx.MockTransport(handler)
        http = httpx.Client(
            base_url=base,
            transport=transport,
            timeout=httpx.Timeout(7.0, connect=2.0),
            headers={"Accept": "application/json", "User-Agent": "braze-content-console"},
        )
        return BrazeClient(
            http=http,
            transport=transport if via == "direct" else None,
            limiter=make_limiter(limits=make_limits(), prefix=f"{prefix}:{via}"),
            api_key="secret-key",
            retry=RetryPolicy(attempts=1, rate_limited_attempts=1),
        )

    items: list[dict[str, Any]] = [
        {"id": "sku-1", "name": "Crème", "price": 1.5},
        {"id": "sku 2/x", "n": None},
    ]
    seen: dict[str, list[httpx.Request]] = {"client": [], "direct": []}
    outcomes: dict[str, list[str]] = {"client": [], "direct": []}
    for via in ("client", "direct"):
        client = braze(via, seen[via])
        for _ in range(4):
            try:
                client.catalog_items_bulk_edit(catalog_name="my catalog", items=items)
                outcomes[via].append("accepted")
            except BrazeError as exc:
                maybe = getattr(exc, "maybe_applied", None)
                outcomes[via].append(f"{type(exc).__name__} {exc.status} {maybe}")
    assert outcomes["direct"] == outcomes["client"]
    assert outcomes["client"][0] == "accepted"
    assert outcomes["client"][1].startswith("BrazeValidationError 400")
    assert outcomes["client"][2].startswith("BrazeUnavailable")
    assert outcomes["client"][3].startswith("BrazeTimeout")
    assert len(seen["direct"]) == len(seen["client"]) == 4
    for sent, direct in zip(seen["client"], seen["direct"], strict=True):
        assert direct.method == sent.method == "PATCH"
        assert direct.url == sent.url
        assert str(direct.url).endswith("/catalogs/my%20catalog/items")
        assert direct.content == sent.content
        assert sorted(direct.headers.multi_items()) == sorted(sent.headers.multi_items())
        assert direct.headers["Authorization"] == "Bearer secret-key"
        assert direct.extensions["timeout"] == sent.extensions["timeout"]


def test_the_console_client_sends_bulk_writes_through_its_transport_unless_behind_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console.braze import close_client, get_client

    close_client()
    try:
        client = get_client()
        assert isinstance(client._transport, httpx.HTTPTransport)
        # The very transport its HTTP client sends through (its pool and keep-alive).
        sent: list[httpx.Request] = []
        handle = client._transport.handle_request

        def spy(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            raise httpx.ConnectError("not here")

        monkeypatch.setattr(client._transport, "handle_request", spy)
        with pytest.raises(httpx.ConnectError):
            client._http.get("/catalogs")
        assert len(sent) == 1
        monkeypatch.setattr(client._transport, "handle_request", handle)
        close_client()
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
        assert get_client()._transport is None
    finally:
        close_client()
