"""The tree of files and the parts of a bundle, as pure functions of two snapshots."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bundles.content import (
    CONTENT_BLOCK,
    EMAIL_TEMPLATE,
    DependencyCycle,
    Part,
    Pick,
    WorkspaceContent,
    content_changes,
    content_files,
    content_from_files,
    dependency_order,
    file_stem,
    parts_errors,
    promotion_preview,
)
from templates_app import rules


def _block(name: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": extra.get("description", ""),
        "content": content,
        "tags": [],
    }


def _template(name: str, body: str) -> dict[str, Any]:
    return {
        "template_name": name,
        "subject": f"{name} subject",
        "preheader": "",
        "body": body,
        "plaintext_body": "",
        "should_inline_css": None,
        "tags": ["b", "a"],
    }


def _content(**kinds: dict[str, dict[str, Any]]) -> WorkspaceContent:
    return WorkspaceContent(workspace="staging", items={k: dict(v) for k, v in kinds.items()})


SAMPLE = _content(
    content_block={"greeting": _block("greeting", "Hi {{${first_name}}},\n")},
    email_template={"Welcome": _template("Welcome", "<p>{{content_blocks.${greeting}}}</p>")},
    preference_center={
        "Main": {
            "name": "Main",
            "preference_center_title": "Prefs",
            "preference_center_page_html": "<form></form>",
            "confirmation_page_html": "<p>Thanks</p>",
            "state": "active",
            "options": {"meta-viewport-content": "width=device-width"},
        }
    },
    catalog={
        "products": {
            "name": "products",
            "description": "",
            "fields": [{"name": "id", "type": "string"}],
        }
    },
)


def test_the_tree_is_one_file_per_body_and_sorted_json_metadata() -> None:
    files = content_files(SAMPLE)

    assert sorted(files) == list(files)
    assert files["content_blocks/greeting.liquid"] == b"Hi {{${first_name}}},\n"
    assert files["email_templates/Welcome.html"] == b"<p>{{content_blocks.${greeting}}}</p>"
    assert files["email_templates/Welcome.txt"] == b""
    assert files["preference_centers/Main.page.html"] == b"<form></form>"
    assert files["preference_centers/Main.confirmation.html"] == b"<p>Thanks</p>"
    metadata = files["email_templates/Welcome.json"].decode()
    assert metadata.endswith("}\n")
    assert list(json.loads(metadata)) == sorted(json.loads(metadata))
    assert json.loads(metadata)["tags"] == ["b", "a"]  # Braze's order, not sorted
    assert json.loads(files["workspace.json"]) == {"format": 1, "workspace": "staging"}
    assert json.loads(files["catalogs/products.json"])["fields"] == [
        {"name": "id", "type": "string"}
    ]


def test_the_same_content_gives_the_same_bytes() -> None:
    reordered = _content(
        **{kind: dict(reversed(list(SAMPLE.items[kind].items()))) for kind in SAMPLE.items}
    )
    assert content_files(SAMPLE) == content_files(reordered)


def test_a_tree_reads_back_as_the_content_it_was_written_from() -> None:
    content, errors = content_from_files(content_files(SAMPLE), workspace="production")

    assert errors == []
    assert content.items == SAMPLE.items


def test_names_that_are_not_safe_file_names_are_encoded() -> None:
    assert file_stem("greeting") == "greeting"
    assert file_stem("Spring Sale (EU)") == "Spring Sale (EU)"
    assert file_stem("../etc/passwd") == "%2E%2E%2Fetc%2Fpasswd"
    assert file_stem(".hidden") == "%2Ehidden"
    odd = _content(content_block={"a/b": _block("a/b", "x")})
    files = content_files(odd)
    assert "content_blocks/a%2Fb.json" in files
    assert content_from_files(files, workspace="staging")[0].items == odd.items


def test_every_malformed_file_is_named_with_what_is_wrong() -> None:
    files = content_files(SAMPLE)
    files["content_blocks/greeting.json"] = b"{not json"
    files["email_templates/Welcome.json"] = json.dumps(
        {**json.loads(files["email_templates/Welcome.json"]), "colour": "red"}
    ).encode()
    del files["preference_centers/Main.confirmation.html"]
    files["content_blocks/stray.liquid"] = b"no metadata beside me"
    files["notes/readme.json"] = b"{}"
    renamed = files.pop("catalogs/products.json")
    files["catalogs/other.json"] = renamed

    _, errors = content_from_files(files, workspace="staging")
    by_path = {e.path: e.message for e in errors}

    assert by_path["content_blocks/greeting.json"].startswith("is not valid JSON")
    assert by_path["email_templates/Welcome.json"] == (
        'has fields this kind does not have: "colour"'
    )
    assert by_path["preference_centers/Main.confirmation.html"] == 'is missing (the body of "Main")'
    assert "is not a file the export writes" in by_path["content_blocks/stray.liquid"]
    assert "is not a file the export writes" in by_path["notes/readme.json"]
    # The greeting's body is claimed by nothing once its metadata cannot be read.
    assert "content_blocks/greeting.liquid" in by_path
    assert by_path["catalogs/other.json"] == 'holds "products", so it must be named products.json'


def test_text_that_is_not_utf8_is_refused() -> None:
    files = content_files(SAMPLE)
    files["content_blocks/greeting.liquid"] = b"\xff\xfe"
    _, errors = content_from_files(files, workspace="staging")
    assert [str(e) for e in errors] == ["content_blocks/greeting.liquid: is not UTF-8 text"]


def _part(kind: str, name: str, text: str) -> Part:
    after = _block(name, text) if kind == CONTENT_BLOCK else _template(name, text)
    return Part(kind, name, "create", None, after)


def test_a_block_goes_before_the_block_and_the_template_that_include_it() -> None:
    parts = [
        _part(EMAIL_TEMPLATE, "Alpha", "{{content_blocks.${zz_footer}}}"),
        _part(CONTENT_BLOCK, "aa_wrapper", "<div>{{content_blocks.${zz_footer}}}</div>"),
        _part(CONTENT_BLOCK, "zz_footer", "Footer"),
    ]
    order = [p.name for p in dependency_order(parts)]
    assert order == ["zz_footer", "aa_wrapper", "Alpha"]


def test_an_include_inside_an_html_comment_or_raw_block_is_no_dependency() -> None:
    parts = [
        _part(CONTENT_BLOCK, "aa", "<!-- {{content_blocks.${zz}}} -->"),
        _part(CONTENT_BLOCK, "bb", "{% raw %}{{content_blocks.${zz}}}{% endraw %}"),
        _part(CONTENT_BLOCK, "zz", "Z"),
    ]
    assert [p.name for p in dependency_order(parts)] == ["aa", "bb", "zz"]


def test_blocks_that_include_each_other_cannot_be_ordered() -> None:
    parts = [
        _part(CONTENT_BLOCK, "a", "{{content_blocks.${b}}}"),
        _part(CONTENT_BLOCK, "b", "{{content_blocks.${a}}}"),
    ]
    with pytest.raises(DependencyCycle, match="include each other"):
        dependency_order(parts)


def test_changes_are_exactly_the_differences_and_never_a_deletion() -> None:
    proposed = _content(
        content_block={
            "greeting": _block("greeting", "Hello {{${first_name}}},\n"),
            "footer": _block("footer", "Bye"),
        },
        email_template={},
    )
    changes = content_changes(current=SAMPLE, proposed=proposed)

    assert [(p.action, p.kind, p.name) for p in changes.parts] == [
        ("create", CONTENT_BLOCK, "footer"),
        ("update", CONTENT_BLOCK, "greeting"),
    ]
    update = changes.parts[1]
    assert {k for k in update.after if update.after[k] != (update.before or {})[k]} == {"content"}
    assert changes.unchanged == 0
    assert changes.untouched == [
        'Email template "Welcome"',
        'Preference center "Main"',
    ]


def test_unchanged_content_has_no_parts() -> None:
    again, _ = content_from_files(content_files(SAMPLE), workspace="staging")
    changes = content_changes(current=SAMPLE, proposed=again)
    assert changes.parts == []
    assert changes.unchanged == 4


def test_an_include_of_a_block_nobody_holds_is_reported() -> None:
    proposed = _content(email_template={"New": _template("New", "{{content_blocks.${nowhere}}}")})
    changes = content_changes(current=SAMPLE, proposed=proposed)
    assert changes.missing == [
        'Email template "New" includes the Content Block "nowhere", which the workspace does '
        "not hold"
    ]


def test_a_name_the_workspace_holds_twice_is_left_out() -> None:
    current = _content(email_template={})
    current.duplicates[EMAIL_TEMPLATE] = ["Twice"]
    proposed = _content(email_template={"Twice": _template("Twice", "x")})
    changes = content_changes(current=current, proposed=proposed)
    assert changes.parts == []
    assert "holds more than one with that name" in changes.notices[0]


def test_a_promotion_offers_the_blocks_a_template_needs_that_the_target_lacks() -> None:
    source = _content(
        content_block={
            "outer": _block("outer", "<div>{{content_blocks.${inner}}}</div>"),
            "inner": _block("inner", "Inner"),
            "shared": _block("shared", "Source's version"),
        },
        email_template={
            "Promo": _template("Promo", "{{content_blocks.${outer}}}{{content_blocks.${shared}}}"),
            "Same": _template("Same", "Same"),
        },
    )
    target = _content(
        content_block={"shared": _block("shared", "Target's version")},
        email_template={"Same": _template("Same", "Same")},
    )
    target.ids = {CONTENT_BLOCK: {"shared": "t-1"}}

    preview = promotion_preview(
        source=source,
        target=target,
        picks=[Pick(EMAIL_TEMPLATE, "Promo"), Pick(EMAIL_TEMPLATE, "Same")],
    )

    # "inner" is needed through "outer"; "shared" exists in the target, so it is left alone.
    assert preview.dependencies == ['Content Block "inner"', 'Content Block "outer"']
    assert [(p.action, p.name) for p in preview.changes.parts] == [
        ("create", "inner"),
        ("create", "outer"),
        ("create", "Promo"),
    ]
    assert preview.identical == ['Email template "Same"']
    assert preview.not_in_source == []
    assert preview.changes.untouched == []


def test_a_promotion_without_its_dependencies_says_what_the_target_will_miss() -> None:
    source = _content(
        content_block={"footer": _block("footer", "F")},
        email_template={"Promo": _template("Promo", "{{content_blocks.${footer}}}")},
    )
    target = _content()
    preview = promotion_preview(
        source=source,
        target=target,
        picks=[Pick(EMAIL_TEMPLATE, "Promo"), Pick(EMAIL_TEMPLATE, "Gone")],
        with_dependencies=False,
    )
    assert [p.name for p in preview.changes.parts] == ["Promo"]
    assert preview.dependencies == ['Content Block "footer"']
    assert preview.changes.missing == [
        'Email template "Promo" includes the Content Block "footer", which the workspace does '
        "not hold"
    ]
    assert preview.not_in_source == ['Email template "Gone"']


def test_a_declined_block_is_offered_but_not_taken_nor_what_only_it_includes() -> None:
    source = _content(
        content_block={
            "outer": _block("outer", "<div>{{content_blocks.${inner}}}</div>"),
            "inner": _block("inner", "Inner"),
            "footer": _block("footer", "F"),
        },
        email_template={
            "Promo": _template("Promo", "{{content_blocks.${outer}}}{{content_blocks.${footer}}}"),
            "Other": _template("Other", "{{content_blocks.${footer}}}"),
        },
    )
    preview = promotion_preview(
        source=source,
        target=_content(),
        picks=[Pick(EMAIL_TEMPLATE, "Promo"), Pick(EMAIL_TEMPLATE, "Other")],
        declined={"outer"},
    )

    # "footer" is needed twice and offered once; "inner" is only needed through "outer".
    assert preview.dependency_names == ["footer", "outer"]
    assert preview.taken == ["footer"]
    assert [(p.action, p.name) for p in preview.changes.parts] == [
        ("create", "footer"),
        ("create", "Other"),
        ("create", "Promo"),
    ]
    assert preview.changes.missing == [
        'Email template "Promo" includes the Content Block "outer", which the workspace does '
        "not hold"
    ]


def test_each_part_is_checked_by_its_kinds_rules_and_named_by_its_file() -> None:
    proposed = _content(
        content_block={
            "bad name!": _block("bad name!", "x"),
            "broken": _block("broken", "{% if %}"),
            "new_one": _block("new_one", "New"),
        },
        email_template={
            "Welcome": _template("Welcome", "{{content_blocks.${new_one}}}"),
            "Lost": _template("Lost", "{{content_blocks.${nowhere}}}"),
        },
    )
    changes = content_changes(current=SAMPLE, proposed=proposed)

    errors = [str(e) for e in parts_errors(changes.parts, current=SAMPLE, block_states={})]

    assert (
        f"content_blocks/{file_stem('bad name!')}.json: name: {rules.BLOCK_NAME_CHARACTERS}"
        in errors
    )
    assert f"content_blocks/broken.liquid: content: {rules.MALFORMED_LIQUID}" in errors
    assert f"email_templates/Lost.html: body: {rules.UNKNOWN_BLOCKS_IN_EMAIL}" in errors
    # A block the bundle creates first counts as held by the template that includes it.
    assert not [e for e in errors if "Welcome" in e or "new_one" in e]
    assert f"email_templates/Lost.json: tags: {rules.TAGS_NOT_FOUND}" not in errors


def test_a_new_catalog_is_created_first_and_a_changed_one_is_only_reported() -> None:
    proposed = _content(
        catalog={
            "shoes": {
                "name": "shoes",
                "description": "Shoes",
                "fields": [{"name": "id", "type": "string"}, {"name": "size", "type": "number"}],
            },
            "products": {**SAMPLE.items["catalog"]["products"], "description": "Changed"},
        },
        content_block={"aa": _block("aa", "{% catalog_items shoes 1 %}{{ items[0].size }}")},
    )
    changes = content_changes(current=SAMPLE, proposed=proposed)

    assert [(p.kind, p.name, p.action) for p in changes.parts] == [
        ("catalog", "shoes", "create"),
        ("content_block", "aa", "create"),
    ]
    assert changes.notices == [
        'Catalog schema "products" differs from the workspace\'s: a new catalog is created by '
        "an import, an existing one's fields are changed on its own screen."
    ]


def test_a_new_catalog_is_checked_by_brazes_catalog_rules() -> None:
    proposed = _content(
        catalog={
            "bad name": {
                "name": "bad name",
                "description": "",
                "fields": [{"name": "size", "type": "colour"}],
            }
        }
    )
    changes = content_changes(current=SAMPLE, proposed=proposed)
    errors = [str(e) for e in parts_errors(changes.parts, current=SAMPLE, block_states={})]
    path = f"catalogs/{file_stem('bad name')}.json"
    assert any(e.startswith(path) and "(invalid-catalog-name)" in e for e in errors), errors
    assert any("(id-not-first-column)" in e for e in errors), errors
    assert any("(invalid-field-types)" in e for e in errors), errors
