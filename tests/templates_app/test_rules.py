"""Contract tests: each Braze rule is refused by the console's rules with Braze's own
message, and the sandbox (Braze's stand-in) refuses the very same input with that message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.braze import BrazeClient, BrazeError, get_client
from templates_app import rules, selectors
from templates_app.rules import Workspace
from tests.fixtures.sandbox import SandboxHandle

BIG = "x" * (50 * 1024 + 1)


def _block(**changes: Any) -> dict[str, Any]:
    return {
        "name": "new_block",
        "description": "A block",
        "content": "<p>Hi</p>",
        "state": "active",
        "tags": [],
        **changes,
    }


BLOCK_CREATE_CASES = [
    ("a name with spaces", _block(name="has space"), rules.BLOCK_NAME_CHARACTERS),
    ("a name of 100 characters", _block(name="n" * 100), rules.BLOCK_NAME_TOO_LONG),
    (
        "a description of 250 characters",
        _block(description="d" * 250),
        rules.BLOCK_DESCRIPTION_TOO_LONG,
    ),
    ("content over 50 KB", _block(content=BIG), rules.CONTENT_TOO_LARGE),
    ("blank content", _block(content=""), rules.CONTENT_BLANK),
    ("malformed Liquid", _block(content="{% if x %}never closed"), rules.MALFORMED_LIQUID),
    ("an unknown filter-less tag", _block(content="{% nosuchtag %}"), rules.MALFORMED_LIQUID),
    (
        "a block including itself",
        _block(name="selfie", content="{{content_blocks.${selfie}}}"),
        rules.BLOCK_SELF_REFERENCE,
    ),
    ("a state other than active or draft", _block(state="archived"), rules.BLOCK_STATE_INVALID),
    ("a tag Braze does not have", _block(tags=["no-such-tag"]), rules.TAGS_NOT_FOUND),
    ("a name already taken", _block(name="email_footer"), rules.BLOCK_NAME_TAKEN),
]


@pytest.fixture
def workspace(braze: SandboxHandle) -> Workspace:
    return selectors.workspace_known()


def _braze_message(call: Callable[[BrazeClient], Any]) -> str:
    with pytest.raises(BrazeError) as caught:
        call(get_client())
    return caught.value.errors[0].message


def _messages(errors: rules.Errors) -> list[str]:
    return [m for messages in errors.values() for m in messages]


@pytest.mark.parametrize(
    ("case", "data", "message"), BLOCK_CREATE_CASES, ids=[c[0] for c in BLOCK_CREATE_CASES]
)
def test_it_refuses_a_new_content_block_as_braze_does(
    workspace: Workspace, case: str, data: dict[str, Any], message: str
) -> None:
    assert message in _messages(rules.content_block_errors(data, workspace=workspace))
    assert _braze_message(lambda c: c.content_block_create(**data)) == message


def _footer_id() -> str:
    return next(
        b.content_block_id for b in selectors.content_block_rows() if b.name == "email_footer"
    )


@pytest.mark.parametrize(
    ("case", "changes", "message"),
    [
        ("renaming an active block", {"name": "footer_v2"}, rules.BLOCK_RENAME_ACTIVE),
        ("an active block back to draft", {"state": "draft"}, rules.BLOCK_ACTIVE_TO_DRAFT),
    ],
)
def test_it_refuses_an_edit_of_an_active_block_as_braze_does(
    workspace: Workspace, case: str, changes: dict[str, Any], message: str
) -> None:
    block_id = _footer_id()
    current = selectors.content_block_snapshot(
        selectors.content_block_get(content_block_id=block_id)
    )
    data = {**current, "state": "active", **changes}
    errors = rules.content_block_errors(
        data, workspace=workspace, current_name="email_footer", current_state="active"
    )
    assert message in _messages(errors)
    assert _braze_message(lambda c: c.content_block_update(content_block_id=block_id, **data)) == (
        message
    )


def test_it_allows_renaming_a_block_the_console_saved_as_a_draft(workspace: Workspace) -> None:
    data = _block(name="renamed")
    errors = rules.content_block_errors(
        data, workspace=workspace, current_name="old_name", current_state="draft"
    )
    assert errors == {}


@pytest.mark.parametrize(
    "content",
    [
        "{% connected_content https://example.com/api :save result %}{{ result.name }}",
        "{% catalog_items products sku-000001 %}{{ items[0].name }}",
        "Hi {{${first_name} | default: 'there'}}",
        "<!-- {% if unclosed %} --><p>Comments are not Liquid</p>",
        "{{content_blocks.${legal_notice}}} and {% abort_message('no') %}",
    ],
)
def test_it_accepts_braze_liquid_that_braze_accepts(workspace: Workspace, content: str) -> None:
    data = _block(content=content)
    assert rules.content_block_errors(data, workspace=workspace) == {}
    result = get_client().content_block_create(**data)
    assert result.content_block_id


def test_it_refuses_a_block_including_a_block_braze_does_not_have(workspace: Workspace) -> None:
    data = _block(content="{{content_blocks.${nowhere}}}")
    assert "nowhere" in " ".join(_messages(rules.content_block_errors(data, workspace=workspace)))
    # Braze itself answers this with a bare 500, so the console must catch it first.
    with pytest.raises(BrazeError) as caught:
        get_client().with_options(max_wait=1).content_block_create(**data)
    assert caught.value.status == 500


def _template(**changes: Any) -> dict[str, Any]:
    return {
        "template_name": "Hello",
        "subject": "Hi",
        "body": "<p>Hi</p>",
        "plaintext_body": "Hi",
        "preheader": "",
        "tags": [],
        "should_inline_css": None,
        **changes,
    }


TEMPLATE_CASES = [
    ("a blank name", _template(template_name="   "), rules.TEMPLATE_NAME_REQUIRED),
    ("no subject", _template(subject=""), rules.SUBJECT_REQUIRED),
    ("no body", _template(body=""), rules.BODY_REQUIRED),
    ("a tag Braze does not have", _template(tags=["nope"]), rules.TAGS_NOT_FOUND),
    (
        "an unknown Content Block",
        _template(body="{{content_blocks.${ghost}}}"),
        rules.UNKNOWN_BLOCKS_IN_EMAIL,
    ),
    (
        "inline CSS that is not a boolean",
        _template(should_inline_css="yes"),
        rules.INLINE_CSS_INVALID,
    ),
]


@pytest.mark.parametrize(
    ("case", "data", "message"), TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES]
)
def test_it_refuses_an_email_template_as_braze_does(
    workspace: Workspace, case: str, data: dict[str, Any], message: str
) -> None:
    assert message in _messages(rules.email_template_errors(data, workspace=workspace))
    sent = {k: v for k, v in data.items() if v != "" or k in {"template_name", "subject", "body"}}
    assert _braze_message(lambda c: c.email_template_create(**sent)) == message


def _center(**changes: Any) -> dict[str, Any]:
    return {
        "name": "new_center",
        "preference_center_title": "Prefs",
        "preference_center_page_html": "<p>page</p>",
        "confirmation_page_html": "<p>ok</p>",
        "state": "active",
        "options": {},
        **changes,
    }


CENTER_CASES = [
    ("a name with spaces", _center(name="my center"), rules.PC_NAME_CHARACTERS),
    ("a name already taken", _center(name="main_preferences"), rules.PC_NAME_TAKEN),
    (
        "no page HTML",
        _center(preference_center_page_html=""),
        "preference_center_page_html is required",
    ),
    (
        "no confirmation HTML",
        _center(confirmation_page_html=""),
        "confirmation_page_html is required",
    ),
    ("a state other than active or draft", _center(state="paused"), rules.PC_STATE_INVALID),
    (
        "a link tag with a bad rel",
        _center(options={"links-tags": [{"rel": "stylesheet"}]}),
        rules.PC_LINKS_INVALID,
    ),
]


@pytest.mark.parametrize(
    ("case", "data", "message"), CENTER_CASES, ids=[c[0] for c in CENTER_CASES]
)
def test_it_refuses_a_preference_center_as_braze_does(
    workspace: Workspace, case: str, data: dict[str, Any], message: str
) -> None:
    errors = rules.preference_center_errors(data, workspace=workspace, creating=True)
    assert message in _messages(errors)
    assert _braze_message(lambda c: c.preference_center_create(**data)) == message


def test_it_refuses_options_that_are_not_an_object() -> None:
    errors = rules.preference_center_errors(
        _center(options=["a"]), workspace=Workspace(), creating=True
    )
    assert errors == {"options": [rules.PC_OPTIONS_NOT_OBJECT]}


def test_it_refuses_a_51st_preference_center() -> None:
    names = frozenset(f"pc{n}" for n in range(50))
    errors = rules.preference_center_errors(
        _center(), workspace=Workspace(preference_center_names=names), creating=True
    )
    assert errors == {"name": [rules.PC_LIMIT_REACHED]}
