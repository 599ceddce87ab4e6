"""How the client reads Braze's answers: refusals, unreadable answers, odd pages and links.

Braze is played by ``httpx.MockTransport`` here, so each answer is exactly the one named;
the sandbox-backed tests (test_client.py) check the same rules against the real process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from console.braze.client import BrazeClient, RetryPolicy
from console.braze.errors import (
    BrazeBadResponse,
    BrazeNotFound,
    BrazeValidationError,
    describe_error,
)
from console.braze.permissions import probe_permissions
from tests.console.braze.helpers import make_limiter, make_limits

BASE = "https://rest.iad-03.braze.com"
Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(prefix: str, handler: Handler) -> BrazeClient:
    return BrazeClient(
        http=httpx.Client(base_url=BASE, transport=httpx.MockTransport(handler)),
        limiter=make_limiter(limits=make_limits(), prefix=prefix),
        api_key="k",
        scim_token="t",
        scim_origin="console.test",
        retry=RetryPolicy(attempts=1, rate_limited_attempts=1),
    )


def answering(status: int, body: Any = None, *, html: str | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if html is not None:
            return httpx.Response(status, text=html, headers={"Content-Type": "text/html"})
        return httpx.Response(status, json=body)

    return handler


MAINTENANCE = "<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"


# --- "no such thing" ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        # Today's docs ("See Content Block information", Troubleshooting).
        (400, "Content Block ID is invalid for this workspace"),
        (400, "Content Block ID is invalid for this workspace."),
        (400, "Content Block has been deleted\u2014content not available"),
        # The older reference collection's wording.
        (400, "Content Block ID is invalid for this App Group"),
        (400, "Content Block has been deleted - content not available"),
        # The same refusal sent with a success status (as braze-sync's client expects).
        (200, "Content Block ID is invalid for this workspace"),
        # A 404 is "not found" whatever it says.
        (404, "Resource missing"),
    ],
)
def test_a_missing_content_block_is_not_found_in_every_wording(
    prefix: str, status: int, message: str
) -> None:
    client = mock_client(prefix, answering(status, {"message": message}))
    with pytest.raises(BrazeNotFound) as caught:
        client.content_block_info(content_block_id="gone")
    assert caught.value.status == status
    assert message in describe_error(caught.value)


@pytest.mark.parametrize(
    "message",
    [
        "Email template ID is invalid for this workspace",
        "Email template ID is invalid for this App Group",
    ],
)
def test_a_missing_email_template_is_not_found_in_either_wording(prefix: str, message: str) -> None:
    client = mock_client(prefix, answering(400, {"message": message}))
    with pytest.raises(BrazeNotFound):
        client.email_template_info(email_template_id="gone")


def test_a_refusal_that_only_mentions_finding_is_still_a_validation_error(prefix: str) -> None:
    client = mock_client(prefix, answering(400, {"message": "Some tags could not be found"}))
    with pytest.raises(BrazeValidationError):
        client.content_block_create(name="x", content="y", tags=["nope"])


# --- Braze's generic error shape -----------------------------------------------------------


def test_the_generic_message_and_errors_shape_is_shown_whole(prefix: str) -> None:
    # "API errors and responses": {"message": <fatal error message>, "errors": [<minor ...>]}
    body = {
        "message": "Bad Request",
        "errors": ["Cannot parse send_at datetime", "in_local_time is true but time has passed"],
    }
    client = mock_client(prefix, answering(400, body))
    with pytest.raises(BrazeValidationError) as caught:
        client.email_template_update(email_template_id="t1", subject="Hi")
    error = caught.value
    for text in ("Bad Request", *body["errors"]):
        assert text in str(error)
        assert text in describe_error(error)
    assert error.error_ids == ("Bad Request", *body["errors"])


def test_the_catalog_shape_keeps_its_ids_and_the_general_message(prefix: str) -> None:
    body = {
        "message": "Invalid Request",
        "errors": [
            {
                "id": "invalid-cursor",
                "message": "'cursor' is not valid",
                "parameters": ["cursor"],
                "parameter_values": ["bad"],
            }
        ],
    }
    client = mock_client(prefix, answering(400, body))
    with pytest.raises(BrazeValidationError) as caught:
        client.catalog_item_page(catalog_name="x", cursor="bad")
    assert caught.value.error_ids == ("invalid-cursor",)
    assert "Invalid Request" in str(caught.value)
    assert "'cursor' is not valid" in str(caught.value)


# --- answers the console cannot read -------------------------------------------------------


def test_an_html_page_with_a_success_status_is_a_typed_error_with_a_clear_message(
    prefix: str,
) -> None:
    client = mock_client(prefix, answering(200, html=MAINTENANCE))
    with pytest.raises(BrazeBadResponse) as caught:
        client.content_block_info(content_block_id="b1")
    text = describe_error(caught.value)
    assert "cannot read" in text
    assert "text/html" in text
    assert "HTTP 200" in text
    assert not caught.value.maybe_applied  # a read changes nothing


def test_an_unreadable_answer_to_a_write_says_it_may_have_been_applied(prefix: str) -> None:
    client = mock_client(prefix, answering(201, html=MAINTENANCE))
    with pytest.raises(BrazeBadResponse) as caught:
        client.content_block_create(name="promo", content="<p>x</p>")
    assert caught.value.maybe_applied
    assert "may or may not have been applied" in describe_error(caught.value)


def test_a_body_that_does_not_decode_is_a_typed_error(prefix: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return httpx.Response(200, content=b"not gzip at all", headers=headers)

    with pytest.raises(BrazeBadResponse) as caught:
        mock_client(prefix, handler).content_block_list()
    assert "cannot read" in describe_error(caught.value)


# Keyed by the operation's name, as the error carries it.
CALLS: dict[str, Callable[[BrazeClient], object]] = {
    "catalog_list": lambda c: c.catalog_list(),
    "catalog_item_list": lambda c: c.catalog_item_page(catalog_name="x"),
    "email_template_list": lambda c: c.email_template_list(),
    "email_template_info": lambda c: c.email_template_info(email_template_id="t"),
    "email_template_create": lambda c: c.email_template_create(
        template_name="n", subject="s", body="b"
    ),
    "content_block_list": lambda c: c.content_block_list(),
    "content_block_info": lambda c: c.content_block_info(content_block_id="b"),
    "content_block_create": lambda c: c.content_block_create(name="n", content="c"),
    "preference_center_list": lambda c: c.preference_center_list(),
    "preference_center_view": lambda c: c.preference_center_view(preference_center_id="p"),
    "preference_center_user_url": lambda c: c.preference_center_user_url(
        preference_center_id="p", user_id="u"
    ),
    "scim_user_get": lambda c: c.scim_user_get(user_id="u"),
}


@pytest.mark.parametrize("operation", sorted(CALLS))
@pytest.mark.parametrize(
    "body", [{"result": "unexpected"}, ["not", "an", "object"]], ids=["other-fields", "array"]
)
def test_json_of_an_unexpected_shape_is_a_typed_error(
    prefix: str, operation: str, body: Any
) -> None:
    client = mock_client(prefix, answering(200, body))
    with pytest.raises(BrazeBadResponse) as caught:
        CALLS[operation](client)
    assert caught.value.operation == operation
    assert "cannot read" in describe_error(caught.value)


def test_a_refusal_sent_with_a_success_status_keeps_brazes_words(prefix: str) -> None:
    client = mock_client(prefix, answering(200, {"message": "Include Inclusion Data error"}))
    with pytest.raises(BrazeBadResponse) as caught:
        client.content_block_info(content_block_id="b1")
    assert "Include Inclusion Data error" in describe_error(caught.value)


# --- item pages ----------------------------------------------------------------------------


def test_page_entries_without_an_id_are_left_out_and_their_places_reported(prefix: str) -> None:
    items = [{"id": "a", "v": 1}, {"v": 2}, "junk", {"id": ""}, {"id": 7}, {"id": None}]
    client = mock_client(prefix, answering(200, {"items": items, "message": "success"}))
    page = client.catalog_item_page(catalog_name="x")
    assert [item["id"] for item in page.items] == ["a", "7"]
    assert page.skipped == (2, 3, 4, 6)


def test_an_absolute_next_link_is_followed_by_its_path_and_query_only(prefix: str) -> None:
    seen: list[httpx.Request] = []
    # The docs' own cursor, with the '=' Braze leaves unescaped in its Link header.
    link = '<https://elsewhere.example:8443/catalogs/x/items?cursor=c2tpcDoxMDA=>; rel="next"'

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, json={"items": [{"id": "a"}]}, headers={"Link": link})
        return httpx.Response(200, json={"items": [{"id": "b"}]})

    client = mock_client(prefix, handler)
    assert [item["id"] for item in client.catalog_item_list(catalog_name="x")] == ["a", "b"]
    second = seen[1].url
    assert (second.scheme, second.host, second.port) == ("https", "rest.iad-03.braze.com", None)
    assert second.raw_path == b"/catalogs/x/items?cursor=c2tpcDoxMDA="
    assert seen[1].headers["Authorization"] == "Bearer k"


# --- the key-permission probe --------------------------------------------------------------


def _workspace(request: httpx.Request) -> httpx.Response:
    """A key that may read Content Blocks and preference centers, gets 401 on catalogs and
    403 on email templates."""
    path = request.url.path
    if path == "/catalogs":
        return httpx.Response(401, json={"message": "Invalid API key"})
    if path.startswith("/templates/email"):
        return httpx.Response(403, json={"message": "Access Denied"})
    if path == "/content_blocks/list":
        blocks = [{"content_block_id": "b1", "name": "footer"}]
        return httpx.Response(200, json={"content_blocks": blocks, "message": "success"})
    if path == "/content_blocks/info":
        return httpx.Response(200, json={"content_block_id": "b1", "name": "footer"})
    if path == "/preference_center/v1/list":
        centers = [{"preference_center_api_id": "p1", "name": "main"}]
        return httpx.Response(200, json={"preference_centers": centers})
    if path == "/preference_center/v1/p1":
        return httpx.Response(200, json={"preference_center_api_id": "p1", "name": "main"})
    return httpx.Response(404, json={"message": "Not Found"})


def test_the_probe_reads_401_and_403_per_endpoint_and_still_reports_the_others(
    prefix: str,
) -> None:
    report = probe_permissions(client=mock_client(prefix, _workspace))
    assert report.problem == ""
    assert {"catalogs.get", "templates.email.list"} <= set(report.missing)
    assert {
        "content_blocks.list",
        "content_blocks.info",
        "preference_center.list",
        "preference_center.get",
    } <= set(report.granted)


def test_the_probe_says_the_key_is_rejected_when_every_endpoint_answers_401(
    prefix: str,
) -> None:
    client = mock_client(prefix, answering(401, {"message": "Invalid API key"}))
    report = probe_permissions(client=client)
    assert report.problem == "Braze rejected the API key (401)"
    assert report.granted == report.missing == []
