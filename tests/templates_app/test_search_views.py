"""The search page, its htmx results, the header's search box and the where-used list."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from console.roles import Role
from templates_app.models import ResourceType, VersionSource
from templates_app.services import version_record

pytestmark = pytest.mark.django_db

SEARCH = reverse("templates_app:search")


def _template(braze_id: str, name: str, body: str) -> None:
    version_record(
        resource_type=ResourceType.EMAIL_TEMPLATE,
        braze_id=braze_id,
        snapshot={"template_name": name, "subject": "", "body": body, "plaintext_body": ""},
        source=VersionSource.SYNCED,
    )


def _block(braze_id: str, name: str, content: str) -> None:
    version_record(
        resource_type=ResourceType.CONTENT_BLOCK,
        braze_id=braze_id,
        snapshot={"name": name, "description": "", "content": content, "tags": []},
        source=VersionSource.SYNCED,
    )


@pytest.mark.parametrize("role", list(Role))
def test_every_role_that_may_browse_content_may_search_it(
    role: Role, client_for: Callable[[Role | None], Client]
) -> None:
    _template("t1", "welcome", "<p>Spring is here</p>")
    response = client_for(role).get(SEARCH, {"q": "spring"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<mark>Spring</mark> is here" in body
    assert reverse("templates_app:email_template_detail", args=["t1"]) in body


def test_a_user_without_a_role_is_refused_and_sees_no_search_box(
    client_for: Callable[[Role | None], Client],
) -> None:
    _template("t1", "welcome", "<p>Spring is here</p>")
    client = client_for(None)
    response = client.get(SEARCH, {"q": "spring"})
    assert response.status_code == 403
    assert "welcome" not in response.content.decode()
    assert 'id="site-search-q"' not in client.get(reverse("home")).content.decode()


def test_an_anonymous_visitor_is_sent_to_sign_in() -> None:
    response = Client().get(SEARCH, {"q": "spring"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_every_page_has_a_labelled_search_box_for_a_viewer(
    client_for: Callable[[Role | None], Client],
) -> None:
    body = client_for(Role.VIEWER).get(reverse("home")).content.decode()
    assert '<form class="site-search" role="search"' in body
    assert '<label for="site-search-q">Search content</label>' in body
    assert f'action="{SEARCH}"' in body


def test_braze_html_in_a_result_is_shown_escaped(
    client_for: Callable[[Role | None], Client],
) -> None:
    _template("t1", "hostile", '<img src=x onerror="alert(1)"> spring offer')
    body = client_for(Role.VIEWER).get(SEARCH, {"q": "spring"}).content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


def test_htmx_gets_only_the_results_with_the_kind_and_history_applied(
    client_for: Callable[[Role | None], Client],
) -> None:
    _template("t1", "promo mail", "<p>promo</p>")
    _block("b1", "banner", "old promo")
    _block("b1", "banner", "new text")
    client = client_for(Role.VIEWER)
    response = client.get(
        SEARCH,
        {"q": "promo", "kind": "content_block", "history": "1"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results">')
    assert "<html" not in body
    assert "promo mail" not in body
    assert "version 1" in body  # the earlier version that said "promo"
    assert reverse("templates_app:history", args=["content_block", "b1"]) in body
    without_history = client.get(SEARCH, {"q": "promo", "kind": "content_block"})
    assert "banner" not in without_history.content.decode()


def test_nothing_found_says_so_and_a_bad_page_number_is_ignored(
    client_for: Callable[[Role | None], Client],
) -> None:
    client = client_for(Role.VIEWER)
    body = client.get(SEARCH, {"q": "absent", "page": "abc"}).content.decode()
    assert "Nothing found" in body
    assert "Search the names" in client.get(SEARCH).content.decode()


def test_results_are_paged(client_for: Callable[[Role | None], Client]) -> None:
    for i in range(25):
        _template(f"t{i:02d}", f"offer {i:02d}", "<p>offer</p>")
    client = client_for(Role.VIEWER)
    first = client.get(SEARCH, {"q": "offer"}).content.decode()
    assert "25 results" in first
    assert 'rel="next" href="?q=offer&amp;page=2"' in first
    second = client.get(SEARCH, {"q": "offer", "page": "2"}).content.decode()
    assert second.count("<li>\n      <h2>") == 5
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second


def test_where_used_lists_the_items_whose_liquid_includes_the_block(
    client_for: Callable[[Role | None], Client],
) -> None:
    _template("t1", "newsletter", "{{content_blocks.${spring_sale}}}")
    _template("t2", "plain_note", "<p>the spring_sale block</p>")
    body = client_for(Role.AUDITOR).get(SEARCH, {"uses": "spring_sale"}).content.decode()
    assert "1 item includes this block" in body
    assert "newsletter" in body
    assert "plain_note" not in body
    assert "{{content_blocks.${spring_sale}}}" in body
