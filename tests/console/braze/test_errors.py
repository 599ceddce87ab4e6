from __future__ import annotations

import time

import pytest

from console.braze.errors import (
    BrazeErrorDetail,
    BrazeForbidden,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeServerError,
    BrazeTimeout,
    BrazeUnavailable,
    BrazeValidationError,
    describe_error,
)


def test_it_explains_a_known_catalog_error_and_keeps_braze_id_visible() -> None:
    error = BrazeValidationError(
        "A catalog with that name already exists",
        status=400,
        errors=(BrazeErrorDetail("catalog-name-already-exists", "…", ("name",), ("stores",)),),
    )
    text = describe_error(error)
    assert "already exists" in text
    assert "stores" in text
    assert text.endswith("Braze error: catalog-name-already-exists.")


def test_it_reads_ids_spelled_with_underscores_like_the_hyphenated_ones() -> None:
    error = BrazeValidationError("x", errors=(BrazeErrorDetail("invalid_ids", "x"),))
    assert "letters, numbers, hyphens and underscores" in describe_error(error)


def test_it_explains_message_style_errors_from_content_endpoints() -> None:
    error = BrazeValidationError(
        "Content contains malformed liquid",
        errors=(BrazeErrorDetail("Content contains malformed liquid", "…"),),
    )
    text = describe_error(error)
    assert "Liquid" in text
    assert "Braze error: Content contains malformed liquid." in text


def test_it_names_the_permission_a_forbidden_key_lacks() -> None:
    text = describe_error(BrazeForbidden("Forbidden", status=403, permission="catalogs.delete"))
    assert "'catalogs.delete' permission" in text
    assert "HTTP 403" in text


def test_it_says_when_a_rate_limited_call_can_be_tried_again() -> None:
    error = BrazeRateLimited(
        "full", group="catalog_items_async", retry_at=time.time() + 30, from_braze=True
    )
    text = describe_error(error)
    assert "about 30 seconds" in text or "about 29 seconds" in text
    assert "catalog_items_async" in text


def test_it_warns_that_a_timed_out_write_may_have_landed() -> None:
    assert "may or may not have been applied" in describe_error(BrazeTimeout("t"))
    assert "Try again" in describe_error(BrazeServerError("s", status=500))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (BrazeNotFound("x", status=404), "could not find"),
        (BrazeUnavailable("x"), "cannot be reached"),
    ],
)
def test_every_error_class_has_plain_words(error: Exception, words: str) -> None:
    assert words in describe_error(error)  # type: ignore[arg-type]
