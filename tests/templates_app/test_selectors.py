"""The lists as the screens show them: the selectors narrow them, not the views."""

from __future__ import annotations

from datetime import UTC, datetime

from templates_app import selectors
from templates_app.selectors import ContentFilters
from tests.fixtures.sandbox import SandboxHandle


def test_blocks_are_narrowed_by_name_in_any_case_by_tag_and_by_type(braze: SandboxHandle) -> None:
    def names(q: str = "", tag: str = "", type: str = "") -> set[str]:
        filters = ContentFilters(q=q, tag=tag, type=type)
        return {block.name for block in selectors.content_block_listing(filters=filters).rows}

    assert "email_footer" in names(q="FOOT")
    assert "legal_notice" not in names(q="FOOT")
    assert "legal_notice" in names(tag="legal")
    assert "greeting" not in names(tag="legal")
    assert "greeting" in names(type="text")
    assert "email_footer" not in names(type="text")
    assert names(type="text", tag="legal") <= names(type="text") & names(tag="legal")


def test_the_tag_menu_offers_every_tag_whatever_the_name_or_tag_filter(
    braze: SandboxHandle,
) -> None:
    every_tag = sorted({tag for block in selectors.content_block_rows() for tag in block.tags})
    listing = selectors.content_block_listing(filters=ContentFilters(q="zzz", tag="legal"))
    assert listing.rows == []
    assert every_tag
    assert listing.tags == every_tag


def test_templates_are_narrowed_by_braze_for_the_date_and_the_tags_follow(
    braze: SandboxHandle,
) -> None:
    recent = selectors.email_template_listing(
        filters=ContentFilters(modified_after=datetime(2000, 1, 1, tzinfo=UTC))
    )
    future = selectors.email_template_listing(
        filters=ContentFilters(modified_after=datetime(2099, 1, 1, tzinfo=UTC))
    )
    assert recent.rows
    assert recent.tags
    assert (future.rows, future.tags) == ([], [])
    by_tag = selectors.email_template_listing(filters=ContentFilters(tag="transactional"))
    assert by_tag.rows
    assert all("transactional" in template.tags for template in by_tag.rows)


def test_preference_centers_are_narrowed_by_name_only(braze: SandboxHandle) -> None:
    center = selectors.preference_center_rows()[0]
    listing = selectors.preference_center_listing(
        filters=ContentFilters(q=center.name.upper(), tag="no-such-tag")
    )
    assert center in listing.rows
    assert listing.tags == []
