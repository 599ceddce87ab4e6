"""Rendering Braze Liquid as one person would receive it."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from templates_app.personalize import (
    BLOCK_DEPTH_MAX,
    LOOP_ITERATIONS_MAX,
    OUTPUT_MAX_CHARS,
    Person,
    Rendered,
    Selected,
    TranslationLocale,
    render_as,
)

CORPUS = json.loads((Path(__file__).parent / "data" / "braze_liquid_examples.json").read_text())
NOW = dt.datetime(2021, 8, 4, 18, 13, 13, tzinfo=dt.UTC)
ANA = Person(
    "Ana",
    {
        "first_name": "Ana",
        "email": "ana@example.com",
        "external_id": "user-1",
        "custom_attributes": {
            "plan": "gold",
            "most_played_song": {"name": "Solsbury Hill", "year": 1977},
            "favorite_foods": ["pasta", "figs"],
        },
    },
    language="pt",
    time_zone="America/Sao_Paulo",
)
NOBODY = Person("Nobody")


class DictCatalogs:
    """Catalogs as {catalog: {item id: values}} and selections' items by "catalog/name"."""

    def __init__(
        self,
        catalogs: dict[str, dict[str, dict[str, Any]]],
        selections: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.catalogs, self.selections = catalogs, selections or {}
        self.personalized: list[str] = []

    def items(self, catalog: str, item_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        if catalog not in self.catalogs:
            return None
        known = self.catalogs[catalog]
        return [{"id": i, **known[i]} for i in item_ids if i in known]

    def selection(
        self, catalog: str, selection: str, personalize: Callable[[str], str]
    ) -> Selected:
        self.personalized.append(personalize("{{${first_name}}}"))
        key = f"{catalog}/{selection}"
        if key not in self.selections:
            return Selected(problem=f"no selection {key}")
        return Selected(items=self.selections[key], notes=("a note from the source",))


def _render(content: str, person: Person = ANA, **kwargs: Any) -> Rendered:
    return render_as(content=content, person=person, now=NOW, **kwargs)


def _tidy(text: str) -> str:
    return re.sub(r"\n\s*\n+", "\n", text).strip()


@pytest.mark.parametrize(
    "example", CORPUS["examples"], ids=[f"{i}" for i in range(len(CORPUS["examples"]))]
)
def test_braze_documented_examples_render_to_the_documented_output(example: dict[str, Any]) -> None:
    person = Person("example", example["attributes"], language=example.get("language", ""))
    now = dt.datetime.fromisoformat(example["now"]) if "now" in example else NOW
    rendered = render_as(
        content=example["template"],
        person=person,
        now=now,
        samples=example.get("samples"),
        catalogs=DictCatalogs(example.get("catalogs", {}), example.get("selections", {})),
    )

    assert rendered.stopped == "", example["page"]
    assert rendered.aborted == example.get("aborted", ""), example["page"]
    if "output" in example:
        output = _tidy(rendered.output)
        if example.get("whitespace") == "collapsed":
            output = " ".join(output.split())
        assert output == example["output"], example["page"]


def test_every_corpus_example_names_its_braze_doc_page() -> None:
    for example in CORPUS["examples"]:
        assert example["page"].startswith("https://www.braze.com/docs/user_guide/")


def test_standard_attributes_read_the_user_export_fields_and_the_profile_settings() -> None:
    rendered = _render(
        "{{${first_name}}} {{${email_address}}} {{${user_id}}} {{${language}}} {{${time_zone}}}"
    )

    assert rendered.output == "Ana ana@example.com user-1 pt America/Sao_Paulo"


def test_a_profile_may_name_standard_attributes_as_liquid_does() -> None:
    person = Person("p", {"email_address": "p@example.com"})

    assert _render("{{${email_address}}}", person).output == "p@example.com"


def test_custom_attributes_nested_and_array_values_are_reachable() -> None:
    rendered = _render(
        "{{custom_attribute.${plan}}} {{custom_attribute.${most_played_song}.name}} "
        "{{custom_attribute.${favorite_foods}[1]}} "
        "{{custom_attribute.${favorite_foods} | join: '+'}}"
    )

    assert rendered.output == "gold Solsbury Hill figs pasta+figs"


def test_a_missing_attribute_is_blank_as_braze_sends_it_and_default_fills_it() -> None:
    rendered = _render(
        "Hello {{${first_name} | default: 'friend'}}{{custom_attribute.${x}}}!", NOBODY
    )

    assert rendered.output == "Hello friend!"
    assert rendered.warnings == ()


def test_dollar_braces_outside_liquid_stay_text() -> None:
    assert _render("It costs ${price} today").output == "It costs ${price} today"


def test_html_comments_are_dropped_before_liquid_runs_as_braze_does() -> None:
    assert _render("<!-- {{ ${first_name} }} -->Hi").output == "Hi"


def test_content_blocks_are_included_with_the_message_variables() -> None:
    blocks = {"greeting": "{% assign who = ${first_name} %}Hi {{who}}", "footer": "Bye"}

    rendered = _render(
        "{{content_blocks.${greeting}}}, {{who}}. {{content_blocks.${footer}}}", blocks=blocks.get
    )

    assert rendered.output == "Hi Ana, Ana. Bye"


def test_nested_content_blocks_resolve_recursively() -> None:
    blocks = {"outer": "[{{content_blocks.${inner}}}]", "inner": "{{${first_name}}}"}

    assert _render("{{content_blocks.${outer}}}", blocks=blocks.get).output == "[Ana]"


def test_a_missing_content_block_shows_a_marker_and_a_warning() -> None:
    rendered = _render("a{{content_blocks.${gone}}}b")

    assert rendered.output == "a[Content Block gone not found]b"
    assert rendered.warnings == ('there is no Content Block named "gone"',)


def test_an_include_cycle_is_stopped_with_its_path() -> None:
    blocks = {"a": "A{{content_blocks.${b}}}", "b": "B{{content_blocks.${a}}}"}

    rendered = _render("{{content_blocks.${a}}}", blocks=blocks.get)

    assert rendered.stopped.startswith("Content Blocks include each other in a cycle (a → b → a)")


def test_includes_deeper_than_the_limit_are_stopped() -> None:
    blocks = {f"b{i}": "{{content_blocks.${b" + str(i + 1) + "}}}" for i in range(50)}

    rendered = _render("{{content_blocks.${b0}}}", blocks=blocks.get)

    assert rendered.stopped == (
        f"Content Blocks are nested more than {BLOCK_DEPTH_MAX} deep; the preview was stopped"
    )


def test_abort_message_says_the_message_would_not_be_sent_and_why() -> None:
    rendered = _render("Hi{% abort_message('no plan') %}")

    assert rendered.aborted == "no plan"
    assert rendered.message == "this message would not be sent to this person: no plan"


def test_connected_content_is_never_fetched_and_shows_the_address_it_would_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the preview opened a connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)

    rendered = _render("{% connected_content https://api.example.com/u/{{${user_id}}} %}")

    assert rendered.calls == ("https://api.example.com/u/user-1",)
    assert rendered.output == "[connected_content: https://api.example.com/u/user-1]"
    assert "would call https://api.example.com/u/user-1" in rendered.warnings[0]


def test_connected_content_uses_the_sample_answer_for_a_matching_url_pattern() -> None:
    rendered = _render(
        "{% connected_content https://api.example.com/u/{{${user_id}}} :save r %}{{r.tier}}",
        samples={"https://api.example.com/u/*": '{"tier": "silver"}'},
    )

    assert rendered.output == "silver"
    assert rendered.warnings == ()


def test_translation_shows_the_source_text_and_says_the_translation_is_in_braze() -> None:
    rendered = _render("{% translation hello %}Hello {{${first_name}}}{% endtranslation %}")

    assert rendered.output == "Hello Ana"
    assert "not its pt translation" in rendered.warnings[0]


@pytest.mark.parametrize(
    "tag", ["form_field_name :email_global_state", "promotion('spring')", "message_extras :key x"]
)
def test_braze_tags_the_preview_cannot_fill_show_a_marker_and_a_warning(tag: str) -> None:
    name = tag.split()[0].split("(")[0]

    rendered = _render("a{% " + tag + " %}b")

    assert rendered.output == f"a[not previewed: {{% {name} %}}]b"
    assert rendered.warnings == (
        f"{{% {name} %}} is not previewed: Braze fills it in when it sends",
    )


@pytest.mark.parametrize("name", ["camelcase", "pluralize", "no_such_filter"])
def test_filters_braze_does_not_support_show_a_marker_and_a_warning(name: str) -> None:
    rendered = _render("{{ 'a b' | " + name + " }}")

    assert rendered.output == f"[unsupported filter: {name}]"
    assert len(rendered.warnings) == 1


def test_now_is_the_render_time_in_the_person_time_zone() -> None:
    rendered = _render("{{ 'now' | time_zone: ${time_zone} | date: '%Y-%m-%d %H:%M' }}")

    assert rendered.output == "2021-08-04 15:13"


def test_a_date_attribute_converts_to_a_time_zone() -> None:
    person = Person("p", {"custom_attributes": {"d": "2021-08-04T09:00:00Z"}})

    rendered = _render(
        "{{custom_attribute.${d} | time_zone: 'America/Los_Angeles' | date: '%H:%M %s'}}", person
    )

    assert rendered.output == "02:00 1628067600"


def test_malformed_liquid_stops_with_the_parser_message() -> None:
    rendered = _render("{{ ${first_name} | ")

    assert rendered.stopped.startswith("the preview stopped: ")


def test_a_runaway_loop_is_stopped() -> None:
    rendered = _render("{% for i in (1..10000000) %}x{% endfor %}")

    assert rendered.stopped == (
        f"loops ran more than {LOOP_ITERATIONS_MAX:,} times and the preview was stopped"
    )


def test_a_10_mb_output_is_stopped_quickly() -> None:
    chunk = "x" * 1000
    started = time.monotonic()

    rendered = _render("{% for i in (1..10000) %}" + chunk + "{% endfor %}")

    assert rendered.stopped == (
        f"the output grew past {OUTPUT_MAX_CHARS:,} characters and the preview was stopped"
    )
    assert time.monotonic() - started < 2


def test_a_variable_doubled_towards_gigabytes_is_stopped() -> None:
    rendered = _render(
        "{% assign s = 'xxxxxxxxxx' %}"
        "{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}"
    )

    assert rendered.stopped.startswith("variables grew past")


def test_a_render_past_its_deadline_is_stopped() -> None:
    rendered = render_as(
        content="{% for i in (1..100) %}{{ i }}{% endfor %}", person=ANA, seconds=0
    )

    assert rendered.stopped == "the preview took longer than 0 seconds and was stopped"


def test_a_number_squared_towards_millions_of_digits_is_stopped_in_time() -> None:
    started = time.monotonic()

    rendered = _render(
        "{% assign n = 99 %}{% for i in (1..40) %}{% assign n = n | times: n %}{% endfor %}"
    )

    assert rendered.stopped == "a number grew past 300 digits and the preview was stopped"
    assert time.monotonic() - started < 1


# --- catalog_items and catalog_selection_items --------------------------------------------------

GAMES: dict[str, dict[str, dict[str, Any]]] = {
    "Games": {
        "1234": {"title": "Tales", "price": 7.49},
        "1235": {"title": "Teslagrad", "price": 9.99},
        "greet": {"message": "Welcome to our store, {{${first_name}}}!"},
        "nested": {"message": "{% catalog_items Games 1234 %}{{ items[0].title }}"},
    }
}


def test_catalog_items_assigns_the_items_asked_for_in_that_order() -> None:
    rendered = _render(
        "{% catalog_items Games 1235 1234 %}{{ items[0].title }}, {{ items[1].price }}",
        catalogs=DictCatalogs(GAMES),
    )

    assert (rendered.output, rendered.warnings) == ("Teslagrad, 7.49", ())


def test_the_catalog_and_item_ids_may_be_written_in_liquid() -> None:
    person = Person("Wisher", {"custom_attributes": {"wishlist": ["1235"], "shop": "Games"}})

    rendered = _render(
        "{% assign wishlist = {{custom_attribute.${wishlist}}} %}"
        "{% catalog_items {{custom_attribute.${shop}}} {{ wishlist[0] }} %}{{ items[0].title }}",
        person,
        catalogs=DictCatalogs(GAMES),
    )

    assert rendered.output == "Teslagrad"


def test_an_item_the_mirror_lacks_is_left_out_with_a_warning() -> None:
    rendered = _render(
        "{% catalog_items Games 9999 1234 %}{{ items.size }} {{ items[0].title }}",
        catalogs=DictCatalogs(GAMES),
    )

    assert rendered.output == "1 Tales"
    assert rendered.warnings == (
        'catalog "Games" has no item 9999 in the mirror: Braze leaves it out of items',
    )


def test_a_catalog_the_console_does_not_mirror_is_a_marker_and_no_items() -> None:
    rendered = _render(
        "{% catalog_items Boardgames 1 %}[{{ items.size }}]", catalogs=DictCatalogs(GAMES)
    )

    assert rendered.output == "[not previewed: {% catalog_items Boardgames 1 %}][0]"
    assert rendered.warnings == ('the console has no mirror of a catalog named "Boardgames"',)


def test_rerender_renders_the_liquid_an_item_holds_and_only_with_the_flag() -> None:
    rendered = _render(
        "{% catalog_items Games greet :rerender %}{{ items[0].message }}|"
        "{% catalog_items Games greet %}{{ items[0].message }}",
        catalogs=DictCatalogs(GAMES),
    )

    assert rendered.output == (
        "Welcome to our store, Ana!|Welcome to our store, {{${first_name}}}!"
    )


def test_catalog_tags_inside_a_catalog_item_are_not_rendered() -> None:
    rendered = _render(
        "{% catalog_items Games nested :rerender %}{{ items[0].message }}",
        catalogs=DictCatalogs(GAMES),
    )

    assert rendered.output == "[not previewed: {% catalog_items Games 1234 %}]"
    assert "inside a catalog item is not rendered" in rendered.warnings[0]


def test_catalog_selection_items_assigns_the_selection_with_the_person_and_its_notes() -> None:
    catalogs = DictCatalogs(GAMES, {"Games/cheap": [{"id": "1234", "title": "Tales"}]})

    rendered = _render(
        "{% catalog_selection_items Games cheap %}{% for item in items %}{{ item.title }}"
        "{% endfor %}",
        catalogs=catalogs,
    )

    assert rendered.output == "Tales"
    assert rendered.warnings == ("a note from the source",)
    assert catalogs.personalized == ["Ana"]


def test_a_selection_the_console_cannot_evaluate_is_a_marker_with_the_reason() -> None:
    rendered = _render(
        "{% catalog_selection_items Games unknown %}{{ items.size }}",
        catalogs=DictCatalogs(GAMES),
    )

    assert rendered.output == "[not previewed: {% catalog_selection_items Games unknown %}]0"
    assert rendered.warnings == ("no selection Games/unknown",)


def test_without_a_catalog_source_catalog_tags_are_markers() -> None:
    rendered = _render("{% catalog_items Games 1234 %}{{ items[0].title }}")

    assert rendered.output == "[not previewed: {% catalog_items Games 1234 %}]"
    assert rendered.warnings == ('the console has no mirror of a catalog named "Games"',)


# --- translation tags by the person's locale -------------------------------------------------

LOCALES = (
    TranslationLocale("es-MX", "es", "MX", {"greeting": "¡Hola, {{${first_name}}}!"}),
    TranslationLocale("es", "es", "", {"greeting": "Hola, {{${first_name}}}.", "cta": "Compra"}),
    TranslationLocale("pt-BR", "pt", "BR", {"greeting": "Olá, {{${first_name}}}!"}),
)
GREETING_TAGS = "{% translation greeting %}Hello, {{${first_name}}}!{% endtranslation %}"


def _as(language: str, country: str = "") -> Person:
    return Person("P", {"first_name": "Ana", "country": country}, language=language)


@pytest.mark.parametrize(
    ("language", "country", "output"),
    [
        ("es", "MX", "¡Hola, Ana!"),
        ("es", "AR", "Hola, Ana."),
        ("es", "", "Hola, Ana."),
        ("pt", "PT", "Hello, Ana!"),
        ("pt", "BR", "Olá, Ana!"),
        ("", "MX", "Hello, Ana!"),
    ],
)
def test_a_translation_tag_renders_the_persons_locale_else_the_source(
    language: str, country: str, output: str
) -> None:
    rendered = _render(GREETING_TAGS, _as(language, country), translations=LOCALES)

    assert (rendered.output, rendered.warnings) == (output, ())


def test_a_locale_without_the_id_sends_the_source_text_with_a_warning() -> None:
    rendered = _render(
        "{% translation cta %}Buy{% endtranslation %}", _as("es", "MX"), translations=LOCALES
    )

    assert rendered.output == "Buy"
    assert rendered.warnings == (
        "translation cta has no es-MX text in Braze: the source text is sent",
    )


def test_translations_of_an_included_block_are_not_the_messages() -> None:
    rendered = _render(
        "{{content_blocks.${intro}}}",
        _as("es"),
        blocks={"intro": GREETING_TAGS}.get,
        translations=LOCALES,
    )

    assert rendered.output == "Hello, Ana!"
    assert "this Content Block's translations are not loaded here" in rendered.warnings[0]
