"""Search across content and "where is this block used", read from the content history
through the full-text, trigram and includes indexes of migration 0003."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection

from templates_app import search
from templates_app.models import ContentVersion, ResourceType, VersionSource
from templates_app.personalize import block_includes
from templates_app.services import version_record

pytestmark = pytest.mark.django_db


def _template(braze_id: str, name: str, body: str = "", **more: str) -> ContentVersion:
    snapshot = {"template_name": name, "subject": "", "body": body, "plaintext_body": "", **more}
    version, _ = version_record(
        resource_type=ResourceType.EMAIL_TEMPLATE,
        braze_id=braze_id,
        snapshot=snapshot,
        source=VersionSource.SYNCED,
    )
    return version


def _block(braze_id: str, name: str, content: str = "", description: str = "") -> ContentVersion:
    snapshot = {"name": name, "description": description, "content": content, "tags": []}
    version, _ = version_record(
        resource_type=ResourceType.CONTENT_BLOCK,
        braze_id=braze_id,
        snapshot=snapshot,
        source=VersionSource.SYNCED,
    )
    return version


def _center(braze_id: str, name: str, page: str) -> ContentVersion:
    snapshot = {"name": name, "preference_center_title": "", "preference_center_page_html": page}
    version, _ = version_record(
        resource_type=ResourceType.PREFERENCE_CENTER,
        braze_id=braze_id,
        snapshot=snapshot,
        source=VersionSource.SYNCED,
    )
    return version


def _names(query: str, **options: Any) -> list[str]:
    return [hit.name for hit in search.content_search(query=query, **options).hits]


def test_it_finds_every_kind_by_name_subject_description_and_content() -> None:
    _template("t1", "welcome", "<p>Hello there</p>", subject="Autumn offers")
    _block("b1", "footer", "<small>Unsubscribe</small>", description="Legal small print")
    _center("p1", "main_preferences", "<h1>Choose your newsletters</h1>")
    assert _names("welcome") == ["welcome"]
    assert _names("autumn") == ["welcome"]
    assert _names("unsubscribe") == ["footer"]
    assert _names("PRINT") == ["footer"]
    assert _names("newsletters") == ["main_preferences"]
    assert _names("nothing-like-this") == []


def test_it_ranks_a_name_match_above_a_subject_match_above_a_body_match() -> None:
    _template("t1", "plain", "<p>the spring collection is here</p>")
    _template("t2", "spring", "<p>nothing else</p>")
    _template("t3", "other", "<p>x</p>", subject="Spring has come")
    assert _names("spring") == ["spring", "other", "plain"]


def test_it_finds_identifiers_and_substrings_through_the_trigram_index() -> None:
    _template("t1", "sale", "{% if campaign == 'spring_sale' %}20% off{% endif %}")
    _template("t2", "words", "<p>spring is a sale season</p>")
    # Words read spring_sale as the phrase "spring sale": the two words apart are no match.
    assert _names("spring_sale") == ["sale"]
    # Inside a longer word: only the substring match finds it.
    _template("t3", "wholesale", "<p>Wholesalers welcome</p>")
    assert "wholesale" in _names("olesaler")
    # An underscore is itself, never LIKE's any-character wildcard.
    _template("t4", "lookalike", "<p>springXsale</p>")
    assert "lookalike" not in _names("spring_sale")


def test_the_search_query_uses_the_full_text_and_trigram_indexes() -> None:
    for i in range(300):
        _template(f"t{i}", f"template {i}", f"<p>body {i}</p>")
    sql = search.search_sql(include_history=True, substring=True, some_kinds=False)
    params: dict[str, str | int | list[str]] = {
        "query": "spring_sale",
        "like": "%spring\\_sale%",
        "types": list(search.SEARCH_FIELDS),
        "limit": 20,
        "offset": 0,
    }
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE templates_app_contentversion")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    used = set(re.findall(r"Index Scan on (\w+)", plan))
    assert {"content_version_search", "content_version_search_trgm"} <= used, plan


def test_the_planner_setting_it_needs_does_not_outlive_the_search() -> None:
    _template("t1", "welcome", "<p>Spring</p>")
    search.content_search(query="spring")
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone() == ("on",)


def test_highlighted_snippets_escape_the_content_and_mark_only_the_matches() -> None:
    _template(
        "t1",
        "welcome",
        '<script>alert("x")</script><p class="hero">Spring is here</p>',
    )
    [hit] = search.content_search(query="spring").hits
    [snippet] = hit.snippets
    assert snippet.label == "Body"
    assert "<script>" not in snippet.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in snippet.html
    assert "<mark>Spring</mark> is here" in snippet.html
    assert snippet.html.replace("<mark>", "").replace("</mark>", "").count("<") == 0


def test_a_query_that_looks_like_markup_is_escaped_in_the_snippet_too() -> None:
    _template("t1", "markup", "<p>Hello <b>bold</b> world</p>")
    [hit] = search.content_search(query="<b>bold").hits
    assert "<mark>&lt;b&gt;bold</mark>" in hit.snippets[0].html


def test_history_is_searched_only_when_asked_and_says_which_version() -> None:
    _block("b1", "banner", "Summer sale ends soon")
    _block("b1", "banner", "Autumn sale ends soon")
    current = search.content_search(query="summer")
    assert current.hits == []
    assert current.total == 0
    [old] = search.content_search(query="summer", include_history=True).hits
    assert (old.name, old.version, old.current) == ("banner", 1, False)
    both = search.content_search(query="sale", include_history=True).hits
    assert [(h.version, h.current) for h in both] == [(2, True), (1, False)]
    [now] = search.content_search(query="sale").hits
    assert (now.version, now.current) == (2, True)


def test_it_narrows_by_kind_and_pages() -> None:
    for i in range(5):
        _template(f"t{i}", f"promo {i}", "<p>promo</p>")
    _block("b1", "promo block", "promo")
    assert _names("promo", kinds=[ResourceType.CONTENT_BLOCK]) == ["promo block"]
    first = search.content_search(query="promo", page_size=4)
    second = search.content_search(query="promo", page=2, page_size=4)
    assert first.total == second.total == 6
    assert (first.has_next, first.has_previous) == (True, False)
    assert (second.has_next, second.has_previous) == (False, True)
    assert len(first.hits) == 4
    assert len(second.hits) == 2
    assert not {h.braze_id for h in first.hits} & {h.braze_id for h in second.hits}


def test_an_empty_or_wordless_query_finds_nothing_and_does_not_fail() -> None:
    _template("t1", "welcome", "<p>{{ first_name }}</p>")
    assert search.content_search(query="   ").hits == []
    assert search.content_search(query="!!").hits == []
    # Punctuation only: no words, but three characters are a substring.
    assert _names("}}</") == ["welcome"]


def test_block_includes_are_parsed_not_matched_as_text() -> None:
    text = (
        "Use spring_sale today. content_blocks.spring_sale "
        "<!-- {{content_blocks.${in_comment}}} -->"
        "{% raw %}{{content_blocks.${in_raw}}}{% endraw %}"
        "{% if vip %}{{ content_blocks.${vip_banner} }}{% endif %}"
        "{{content_blocks.${spring-sale}}}"
    )
    assert block_includes(text) == ["vip_banner", "spring-sale"]


def test_where_used_lists_current_includes_not_mentions() -> None:
    _template("t1", "newsletter", "<p>{{content_blocks.${spring_sale}}}</p>")
    _template("t2", "mentions", "<p>See the spring_sale block: content_blocks.spring_sale</p>")
    _template("t3", "commented", "<!-- {{content_blocks.${spring_sale}}} -->")
    _block("b1", "wrapper", "{% if x %}{{content_blocks.${spring_sale}}}{% endif %}")
    _block("b2", "spring_sale", "20% off")
    # Once included, since dropped: history only.
    _template("t4", "old", "{{content_blocks.${spring_sale}}}")
    _template("t4", "old", "<p>no block now</p>")
    used = search.content_block_usage(name="spring_sale")
    assert [(u.resource_type, u.name) for u in used] == [
        (ResourceType.EMAIL_TEMPLATE, "newsletter"),
        (ResourceType.CONTENT_BLOCK, "wrapper"),
    ]
    with_history = search.content_block_usage(name="spring_sale", include_history=True)
    assert ("old", 1, False) in [(u.name, u.version, u.current) for u in with_history]
    assert search.content_block_usage(name="spring") == []


def test_a_new_version_records_its_includes_from_every_liquid_field() -> None:
    version = _template(
        "t1",
        "x",
        "{{content_blocks.${body_block}}}",
        subject="{{content_blocks.${subject_block}}}",
        plaintext_body="{{content_blocks.${body_block}}} {{content_blocks.${text_block}}}",
    )
    assert version.includes == ["subject_block", "body_block", "text_block"]
    center = _center("p1", "prefs", "{{content_blocks.${not_read_here}}}")
    assert center.includes == []
