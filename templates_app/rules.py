"""Every rule Braze applies to email templates, Content Blocks and preference centers.

The forms run these before anything is sent, so a proposal Braze would refuse is refused
in the console first, with Braze's own wording (templates.md, preference-center.md and
what Braze does beyond its docs, braze-facts §1.2-1.4). Each check returns the errors by
form field; an empty dict means Braze would accept the input as far as the console can know.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from templates_app.liquid import liquid_error, referenced_blocks

type Errors = dict[str, list[str]]

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
BLOCK_NAME_MAX = 100  # "must be shorter than": 99 characters at most
BLOCK_DESCRIPTION_MAX = 250
CONTENT_MAX_BYTES = 50 * 1024
STATES = ("active", "draft")
PREFERENCE_CENTER_LIMIT = 50
LINK_RELS = frozenset({"icon", "shortcut icon", "apple-touch-icon"})

# Braze's messages, word for word.
TAGS_NOT_FOUND = "Some tags could not be found"
BLOCK_NAME_BLANK = "Content Block name cannot be blank"
BLOCK_NAME_TOO_LONG = "Content Block name must be shorter than 100 characters"
BLOCK_NAME_CHARACTERS = "Content Block name can only contain alphanumeric characters"
BLOCK_DESCRIPTION_TOO_LONG = "Content Block description must be shorter than 250 characters"
CONTENT_BLANK = "Content cannot be blank"
CONTENT_TOO_LARGE = "Content must be smaller than 50kb"
BLOCK_STATE_INVALID = "Content Block state must be either active or draft"
BLOCK_SELF_REFERENCE = "Content Block cannot be referenced within itself"
MALFORMED_LIQUID = "Content contains malformed liquid"
BLOCK_NAME_TAKEN = "Content Block with this name already exists"
BLOCK_RENAME_ACTIVE = "Content Block name cannot be updated for active Content Blocks"
BLOCK_ACTIVE_TO_DRAFT = (
    "Active Content Block can not be updated to Draft. Create a new Content Block."
)
TEMPLATE_NAME_REQUIRED = "Template name is required"
SUBJECT_REQUIRED = "Subject is required"
BODY_REQUIRED = "Body is required"
INLINE_CSS_INVALID = "Invalid value for `should_inline_css`. One of `true` or `false` was expected"
UNKNOWN_BLOCKS_IN_EMAIL = "Email must have valid Content Block names"
PC_NAME_REQUIRED = "name is required"
PC_NAME_CHARACTERS = (
    "name can only contain letters, numbers, hyphens, and underscores, and no spaces"
)
PC_NAME_TAKEN = "A preference center with this name already exists"
PC_LIMIT_REACHED = "Maximum number of preference centers reached"
PC_STATE_INVALID = "state must be either active or draft"
PC_OPTIONS_NOT_OBJECT = "options must be an object"
PC_LINKS_INVALID = "options.links-tags must be objects with a valid rel"


def _required(field: str) -> str:
    return f"{field} is required"


@dataclass(frozen=True, slots=True)
class Workspace:
    """What the console knows of the Braze workspace when it checks a proposal."""

    tags: frozenset[str] = frozenset()
    block_names: frozenset[str] = frozenset()
    preference_center_names: frozenset[str] = frozenset()


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def tags_errors(tags: Collection[str], workspace: Workspace) -> Errors:
    # Braze has no endpoint that lists tags; the console knows those in use on any
    # template or Content Block (see selectors.known_tags).
    return {"tags": [TAGS_NOT_FOUND]} if set(tags) - workspace.tags else {}


def content_too_large(content: str) -> bool:
    # A character is at least one byte: no need to encode text too long in characters.
    return len(content) > CONTENT_MAX_BYTES or len(content.encode()) > CONTENT_MAX_BYTES


def content_block_state_notice(*, state: str, known_state: str | None) -> str:
    """What the reviewer and the proposer must know about the block's state, or ""."""
    if state != "active":
        return ""
    if known_state is None:
        return (
            "Braze will publish this block (make it active) when this change is applied: "
            "Braze's API cannot keep it as a draft. Braze does not report whether a block is "
            "a draft, and the console did not save this one, so if it was saved as a draft "
            "in Braze's dashboard it goes live with this change, in every message that "
            "includes it."
        )
    if known_state == "draft":
        return (
            "This change publishes the block: it goes from draft to active, in every message "
            "that includes it."
        )
    return ""


def content_block_errors(
    data: Mapping[str, Any],
    *,
    workspace: Workspace,
    current_name: str | None = None,
    current_state: str | None = None,
) -> Errors:
    """`data`: name, description, content, state, tags. `current_*`: the block being edited
    (None when creating one); its state is None when the console does not know it."""
    errors: Errors = {}
    name = data.get("name") or ""
    description = data.get("description") or ""
    content = data.get("content") or ""
    state = data.get("state") or "active"
    if not name:
        _add(errors, "name", BLOCK_NAME_BLANK)
    elif len(name) >= BLOCK_NAME_MAX:
        _add(errors, "name", BLOCK_NAME_TOO_LONG)
    elif not NAME_RE.match(name):
        _add(errors, "name", BLOCK_NAME_CHARACTERS)
    if len(description) >= BLOCK_DESCRIPTION_MAX:
        _add(errors, "description", BLOCK_DESCRIPTION_TOO_LONG)
    too_large = content_too_large(content)
    if not content:
        _add(errors, "content", CONTENT_BLANK)
    elif too_large:
        # Nothing larger is parsed: the limit is what bounds the Liquid check's work.
        _add(errors, "content", CONTENT_TOO_LARGE)
    if state not in STATES:
        _add(errors, "state", BLOCK_STATE_INVALID)
    if content and not too_large:
        references = set(referenced_blocks(content))
        if name in references or (current_name and current_name in references):
            _add(errors, "content", BLOCK_SELF_REFERENCE)
        elif liquid_error(content) is not None:
            _add(errors, "content", MALFORMED_LIQUID)
        else:
            missing = references - workspace.block_names
            if missing:
                # Braze answers this with a bare HTTP 500 and no message of its own.
                _add(
                    errors,
                    "content",
                    "Content includes Content Blocks that do not exist in Braze: "
                    + ", ".join(sorted(missing))
                    + ".",
                )
    renamed = current_name is not None and name and name != current_name
    if renamed and current_state != "draft":
        # Braze's info endpoint does not say whether a block is active; unless the console
        # itself saved it as a draft, it is treated as active, as Braze's default is.
        _add(errors, "name", BLOCK_RENAME_ACTIVE)
    if (current_name is None or renamed) and name in workspace.block_names:
        _add(errors, "name", BLOCK_NAME_TAKEN)
    if current_name is not None and current_state != "draft" and state == "draft":
        _add(errors, "state", BLOCK_ACTIVE_TO_DRAFT)
    for field, messages in tags_errors(data.get("tags") or [], workspace).items():
        errors.setdefault(field, []).extend(messages)
    return errors


def email_template_errors(data: Mapping[str, Any], *, workspace: Workspace) -> Errors:
    """`data`: template_name, subject, body, plaintext_body, preheader, tags, should_inline_css
    (True, False or None for the workspace default)."""
    errors: Errors = {}
    if not (data.get("template_name") or "").strip():
        _add(errors, "template_name", TEMPLATE_NAME_REQUIRED)
    if not data.get("subject"):
        _add(errors, "subject", SUBJECT_REQUIRED)
    if not data.get("body"):
        _add(errors, "body", BODY_REQUIRED)
    if data.get("should_inline_css") not in (True, False, None):
        _add(errors, "should_inline_css", INLINE_CSS_INVALID)
    for field in ("body", "plaintext_body", "subject"):
        if set(referenced_blocks(data.get(field) or "")) - workspace.block_names:
            _add(errors, field, UNKNOWN_BLOCKS_IN_EMAIL)
    for field, messages in tags_errors(data.get("tags") or [], workspace).items():
        errors.setdefault(field, []).extend(messages)
    return errors


def preference_center_errors(
    data: Mapping[str, Any], *, workspace: Workspace, creating: bool
) -> Errors:
    """`data`: name, preference_center_title, preference_center_page_html,
    confirmation_page_html, state, options. The name is fixed once created."""
    errors: Errors = {}
    if creating:
        name = data.get("name") or ""
        if not name:
            _add(errors, "name", PC_NAME_REQUIRED)
        elif not NAME_RE.match(name):
            _add(errors, "name", PC_NAME_CHARACTERS)
        elif name in workspace.preference_center_names:
            _add(errors, "name", PC_NAME_TAKEN)
        elif len(workspace.preference_center_names) >= PREFERENCE_CENTER_LIMIT:
            _add(errors, "name", PC_LIMIT_REACHED)
    for field in ("preference_center_page_html", "confirmation_page_html"):
        if not data.get(field):
            _add(errors, field, _required(field))
    if (data.get("state") or "active") not in STATES:
        _add(errors, "state", PC_STATE_INVALID)
    options = data.get("options", {})
    if not isinstance(options, dict):
        _add(errors, "options", PC_OPTIONS_NOT_OBJECT)
    else:
        links = options.get("links-tags", [])
        if not isinstance(links, list) or not all(
            isinstance(link, dict) and link.get("rel") in LINK_RELS for link in links
        ):
            _add(errors, "options", PC_LINKS_INVALID)
    return errors
