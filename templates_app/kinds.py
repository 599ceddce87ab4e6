"""The kinds of content the console edits, each described once by a `ContentKind`.

One list screen, one form screen and one propose service serve every kind from its spec;
each kind keeps its own detail screen. docs/CONTRIBUTING.md shows how to add a kind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.urls import reverse

from console.tables import Column
from templates_app import selectors
from templates_app.forms import (
    ContentBlockForm,
    ContentForm,
    EmailTemplateForm,
    PreferenceCenterForm,
)
from templates_app.models import ResourceType
from templates_app.selectors import ContentFilters, Listing


@dataclass(frozen=True, slots=True)
class Loaded:
    """An existing item as its edit form starts from it."""

    # What Braze holds: the change request keeps it as the base its apply step checks.
    base: dict[str, Any] | None = None
    initial: dict[str, Any] | None = None
    # More keyword arguments for the kind's form (what its rules must know of the item).
    form_options: dict[str, Any] = field(default_factory=dict)


class ListingSelector(Protocol):
    def __call__(self, *, filters: ContentFilters) -> Listing[Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentKind:
    resource_type: ResourceType
    noun: str  # "New <noun>", "Edit <noun> <name>"
    plural: str  # the list's title
    path: str  # /content/<path>/ lists them, /content/<path>/<id>/ shows one
    id_param: str  # the id's name in the URLs
    list_name: str  # the list's URL name
    name_field: str  # where a list row and a payload keep the name
    form: type[ContentForm]
    listing: ListingSelector
    # Every item's id and Braze's last-updated stamp, as the scheduled sync walks them.
    stamps: Callable[[], list[tuple[str, str]]]
    # One item from Braze as history keeps it (a snapshot), and its last-updated stamp.
    read: Callable[[str], tuple[dict[str, Any], str]]
    load: Callable[[str], Loaded]  # one item from Braze as its edit form starts from it
    payload: Callable[[dict[str, Any]], dict[str, Any]]  # the form's data as proposed
    # A create's identifier until Braze assigns an id (the appliers resolve it).
    create_identifier: Callable[[dict[str, Any]], str]
    html_fields: tuple[tuple[str, str], ...]  # (field, label): previewed and diffed rendered
    columns: tuple[Column[Any], ...]
    empty_message: str
    filters_template: str = ""  # the list's filters beyond the name search
    note_template: str = ""  # what the list says below its filters

    @property
    def key(self) -> str:
        return self.resource_type.value

    @property
    def label(self) -> str:
        return str(self.resource_type.label)

    @property
    def list_url(self) -> str:
        return f"templates_app:{self.list_name}"

    @property
    def create_url(self) -> str:
        return f"templates_app:{self.key}_create"

    @property
    def detail_url(self) -> str:
        return f"templates_app:{self.key}_detail"

    @property
    def edit_url(self) -> str:
        return f"templates_app:{self.key}_edit"


def _short(stamp: str) -> str:
    return stamp[:16].replace("T", " ") if stamp else ""


def _by_name(payload: dict[str, Any]) -> str:
    # Names are unique among blocks and among preference centers, so a retried create
    # finds what an unanswered first attempt made.
    return f"name:{payload['name']}"


def _state(data: dict[str, Any]) -> str:
    return data.get("state") or "active"


# --- email templates -------------------------------------------------------------------------


def _email_template_stamps() -> list[tuple[str, str]]:
    return [(t.email_template_id, t.updated_at) for t in selectors.email_template_rows()]


def _email_template_read(braze_id: str) -> tuple[dict[str, Any], str]:
    template = selectors.email_template_get(email_template_id=braze_id)
    return selectors.email_template_snapshot(template), template.updated_at


def _email_template_load(braze_id: str) -> Loaded:
    base, _ = _email_template_read(braze_id)
    inline_css = {True: "true", False: "false"}.get(base["should_inline_css"], "")
    return Loaded(base, {**base, "should_inline_css": inline_css})


def _email_template_payload(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "template_name": data["template_name"].strip(),
        "subject": data["subject"],
        "preheader": data.get("preheader") or "",
        "body": data["body"],
        "plaintext_body": data.get("plaintext_body") or "",
        "should_inline_css": data.get("should_inline_css"),
        "tags": list(data.get("tags") or []),
    }


EMAIL_TEMPLATES = ContentKind(
    resource_type=ResourceType.EMAIL_TEMPLATE,
    noun="email template",
    plural="Email templates",
    path="templates",
    id_param="email_template_id",
    list_name="email_templates",
    name_field="template_name",
    form=EmailTemplateForm,
    listing=selectors.email_template_listing,
    stamps=_email_template_stamps,
    read=_email_template_read,
    load=_email_template_load,
    payload=_email_template_payload,
    # Template names need not be unique: a new template is known by a token until created.
    create_identifier=lambda payload: f"new:{uuid.uuid4().hex}",
    html_fields=(("body", "HTML body"),),
    columns=(
        Column(
            "template_name",
            "Name",
            link=lambda t: reverse(
                "templates_app:email_template_detail", args=[t.email_template_id]
            ),
        ),
        Column("tags", "Tags", value=lambda t: ", ".join(t.tags), sortable=False),
        Column("created_at", "Created", value=lambda t: _short(t.created_at)),
        Column("updated_at", "Updated", value=lambda t: _short(t.updated_at)),
    ),
    empty_message=(
        "No email templates match. Templates made with Braze's drag-and-drop editor are "
        "not returned by Braze's API, so they never appear here."
    ),
    filters_template="templates_app/_email_template_filters.html",
    note_template="templates_app/_email_template_note.html",
)


# --- content blocks --------------------------------------------------------------------------


def _content_block_stamps() -> list[tuple[str, str]]:
    return [(b.content_block_id, b.last_edited) for b in selectors.content_block_rows()]


def _content_block_read(braze_id: str) -> tuple[dict[str, Any], str]:
    block = selectors.content_block_get(content_block_id=braze_id)
    return selectors.content_block_snapshot(block), block.last_edited


def _content_block_load(braze_id: str) -> Loaded:
    base, _ = _content_block_read(braze_id)
    # Braze never reports a block's state: only the console's record of its own last write.
    state = selectors.content_block_state(content_block_id=braze_id)
    return Loaded(
        base,
        {**base, "state": state or "active"},
        {"current_name": base["name"], "current_state": state},
    )


def _content_block_payload(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        "description": data.get("description") or "",
        "content": data["content"],
        "tags": list(data.get("tags") or []),
        "state": _state(data),
    }


CONTENT_BLOCKS = ContentKind(
    resource_type=ResourceType.CONTENT_BLOCK,
    noun="Content Block",
    plural="Content blocks",
    path="blocks",
    id_param="content_block_id",
    list_name="content_blocks",
    name_field="name",
    form=ContentBlockForm,
    listing=selectors.content_block_listing,
    stamps=_content_block_stamps,
    read=_content_block_read,
    load=_content_block_load,
    payload=_content_block_payload,
    create_identifier=_by_name,
    html_fields=(("content", "Content"),),
    columns=(
        Column(
            "name",
            "Name",
            link=lambda b: reverse("templates_app:content_block_detail", args=[b.content_block_id]),
        ),
        Column("content_type", "Type"),
        Column("tags", "Tags", value=lambda b: ", ".join(b.tags), sortable=False),
        Column("inclusion_count", "Inclusions", numeric=True),
        Column("last_edited", "Last edited", value=lambda b: _short(b.last_edited)),
    ),
    empty_message="No Content Blocks match these filters.",
    filters_template="templates_app/_content_block_filters.html",
)


# --- preference centers ----------------------------------------------------------------------


def _preference_center_stamps() -> list[tuple[str, str]]:
    rows = selectors.preference_center_rows()
    return [(p.preference_center_api_id, p.updated_at) for p in rows]


def _preference_center_read(braze_id: str) -> tuple[dict[str, Any], str]:
    center = selectors.preference_center_get(preference_center_id=braze_id)
    return selectors.preference_center_snapshot(center), center.updated_at


def _preference_center_load(braze_id: str) -> Loaded:
    base, _ = _preference_center_read(braze_id)
    return Loaded(base, {**base, "options": json.dumps(base["options"], indent=2)})


def _preference_center_payload(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        # Braze fills in this default when none is sent; sending it keeps history exact.
        "preference_center_title": data.get("preference_center_title") or "Preference Center",
        "preference_center_page_html": data["preference_center_page_html"],
        "confirmation_page_html": data["confirmation_page_html"],
        "state": _state(data),
        "options": dict(data.get("options") or {}),
    }


PREFERENCE_CENTERS = ContentKind(
    resource_type=ResourceType.PREFERENCE_CENTER,
    noun="preference center",
    plural="Preference centers",
    path="preference-centers",
    id_param="preference_center_id",
    list_name="preference_centers",
    name_field="name",
    form=PreferenceCenterForm,
    listing=selectors.preference_center_listing,
    stamps=_preference_center_stamps,
    read=_preference_center_read,
    load=_preference_center_load,
    payload=_preference_center_payload,
    create_identifier=_by_name,
    html_fields=(
        ("preference_center_page_html", "Preference center page"),
        ("confirmation_page_html", "Confirmation page"),
    ),
    columns=(
        Column(
            "name",
            "Name",
            link=lambda p: reverse(
                "templates_app:preference_center_detail", args=[p.preference_center_api_id]
            ),
        ),
        Column("created_at", "Created", value=lambda p: _short(p.created_at)),
        Column("updated_at", "Updated", value=lambda p: _short(p.updated_at)),
    ),
    empty_message="No preference centers match.",
)

KINDS: dict[str, ContentKind] = {
    kind.resource_type: kind for kind in (EMAIL_TEMPLATES, CONTENT_BLOCKS, PREFERENCE_CENTERS)
}
