"""The console's Liquid pre-check: Braze's own tags pass, malformed Liquid does not, and
the work done grows linearly with the content (issue 17, point 7)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from templates_app import rules
from templates_app.forms import ContentBlockForm
from templates_app.liquid import included_blocks, liquid_error

# One documented use of each of Braze's own Liquid tags (braze-inc/braze-docs).
BRAZE_LIQUID = {
    "translation": "{% translation id_0 %}Hello {{${first_name}}}!{% endtranslation %}",
    "translation without id": "{% translation %}Hi{% endtranslation %}",
    "message_extras": "{% message_extras :key test :value 123 %}",
    "connected_content": (
        "{% connected_content https://example.com/api?user=${user_id} :save result %}"
        "{% if result.__http_status_code__ != 200 %}{% abort_message('no data') %}{% endif %}"
    ),
    "catalog_items": "{% catalog_items Games 1234 :rerender %}{{ items[0].title }}",
    "catalog_selection_items": (
        "{% catalog_selection_items Games cheap_games %}"
        "{% for item in items %}{{ item.title }}{% endfor %}"
    ),
    "abort_message": "{% abort_message() %}",
    "promotion": "Your code: {% promotion('spring25') %}",
    "form_field_name": '<input type="checkbox" {% form_field_name :email_global_state %}>',
    "form_field_name with a group": "<input {% form_field_name :subscription_group abc-123 %}>",
    "landing_page_url": '<a href="{% landing_page_url customer-survey %}">Survey</a>',
    "content block": "{{content_blocks.${legal-notice}}}",
    "output inside a tag": (
        "{% if {{custom_attribute.${balance}}} > 0 %}Balance{% else %}{% abort_message() %}"
        "{% endif %}"
    ),
    "output inside assign": (
        "{% assign points = {{custom_attribute.${current_rewards_balance} | plus: 50}} %}"
    ),
    "message_extras with a capture": (
        "{% capture code %}{% promotion('x') %}{% endcapture %}"
        "{% message_extras :key cardscode :value {{code}} %}"
    ),
    "Liquid inside an HTML comment": "<!-- {% if %} -->ok",
    "raw": "{% raw %}{{ not Liquid {% endraw %}",
}
MALFORMED = {
    "unclosed if": "{% if x %}",
    "unclosed output": "Hello {{ first_name",
    "unclosed tag": "{% assign x = 1",
    "translation with no end": "{% translation id_0 %}Hello",
    "end with no translation": "Hello{% endtranslation %}",
    "crossed blocks": "{% if a %}{% translation t %}{% endif %}{% endtranslation %}",
    "raw with no end": "{% raw %}Hello",
    "empty filter": "{{ name | }}",
    "for with nothing": "{% for %}{% endfor %}",
}


@pytest.mark.parametrize("content", BRAZE_LIQUID.values(), ids=BRAZE_LIQUID.keys())
def test_brazes_own_liquid_is_accepted(content: str) -> None:
    assert liquid_error(content) is None


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_liquid_is_still_refused(content: str) -> None:
    assert liquid_error(content) is not None


def _seconds(check: Callable[[str], object], text: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        check(text)
        best = min(best, time.perf_counter() - started)
    return best


# Inputs that made the old check quadratic (its regexes rescanned from every unclosed
# opener) or python-liquid's lexer and parser worse than linear.
PATHOLOGICAL = {
    "unclosed comments": "<!--",
    "unclosed personalization": "${",
    "unclosed output": "{",
    "unclosed raw": "{% raw %}",
    "nested parentheses": "{{ (",
    "spaces in an output": "{{   ",
}


@pytest.mark.parametrize("unit", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_doubling_the_content_twice_multiplies_the_time_by_four_not_sixteen(unit: str) -> None:
    size = 4_000
    small = _seconds(liquid_error, unit * (size // len(unit)))
    large = _seconds(liquid_error, unit * (4 * size // len(unit)))
    # Linear work grows 4 times; quadratic 16 times. The constant absorbs a loaded machine.
    assert large <= 6 * small + 0.05, (small, large)


def test_the_largest_allowed_content_is_checked_quickly_whatever_it_holds() -> None:
    for unit in PATHOLOGICAL.values():
        text = unit * (rules.CONTENT_MAX_BYTES // len(unit))
        assert _seconds(liquid_error, text) < 1.0, unit


TOO_LARGE = {
    "2.5 MB": "<p>x</p>" * (2_500_000 // 8),
    "200 KB of unclosed comments": "<!--" * 50_000,
    "200 KB of unclosed personalization": "${" * 100_000,
}


@pytest.mark.parametrize("content", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_oversized_content_is_refused_for_its_size_without_being_parsed(content: str) -> None:
    started = time.perf_counter()
    errors = rules.content_block_errors(
        {"name": "big", "content": content}, workspace=rules.Workspace()
    )
    assert errors == {"content": [rules.CONTENT_TOO_LARGE]}
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("content", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_the_form_refuses_oversized_content_quickly(content: str) -> None:
    started = time.perf_counter()
    form = ContentBlockForm(
        {"name": "big", "content": content, "state": "active"}, workspace=rules.Workspace()
    )
    assert not form.is_valid()
    assert form.errors["content"] == [rules.CONTENT_TOO_LARGE]
    assert time.perf_counter() - started < 1.0


def test_included_blocks_are_found_by_parsing_not_by_matching_text() -> None:
    content = (
        "<p>{{content_blocks.${greeting}}}</p>"
        "<!-- {{content_blocks.${commented_out}}} -->"
        "{% raw %}{{content_blocks.${shown_as_text}}}{% endraw %}"
        "{% if x %}{{ content_blocks.${email-footer} }}{% endif %}"
    )
    assert included_blocks(content) == {"greeting", "email-footer"}


def test_content_that_does_not_parse_includes_every_block_it_names() -> None:
    # An order built on it must never miss a dependency.
    assert included_blocks("{% if %}{{content_blocks.${a}}}") == {"a"}
    assert included_blocks("No includes") == frozenset()
