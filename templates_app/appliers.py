"""How approved change requests reach Braze for the three content resources.

Identifiers: a resource's Braze id, or `name:<name>` for a Content Block or preference
center not created yet (names are unique there, so an existing one is a conflict), or
`new:<token>` for a new email template (template names need not be unique).
After each write the applier re-reads Braze and stores that state as an applied version,
so the scheduled sync does not mistake the console's own change for an external one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.braze import BrazeNotFound, get_client
from console.changes.appliers import merge_state
from console.changes.diff import same
from templates_app import selectors, services
from templates_app.models import ResourceType

NAME_PREFIX = "name:"
NEW_PREFIX = "new:"


def review_url(change_request_id: int) -> str:
    """Where a reviewer sees the HTML as a line diff and rendered before and after."""
    from django.urls import reverse

    return reverse("templates_app:change_preview", args=[change_request_id])


def _without_state(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "state"}


def _id_by_name(identifier: str, find: Callable[[str], str | None]) -> str | None:
    """A create's identifier is "name:<name>" until Braze assigns an id; resolve it from a
    fresh list so a retried create finds what an unanswered first attempt made."""
    if not identifier.startswith(NAME_PREFIX):
        return identifier
    selectors.lists_forget()
    return find(identifier.removeprefix(NAME_PREFIX))


class _ContentApplier:
    """What the three content appliers share: the rendered review page and the diff."""

    review_url = staticmethod(review_url)

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


class ContentBlockApplier(_ContentApplier):
    label = "Content Block"

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        block_id = _id_by_name(
            identifier,
            lambda name: next(
                (b.content_block_id for b in selectors.content_block_rows() if b.name == name),
                None,
            ),
        )
        if block_id is None:
            return None
        try:
            block = selectors.content_block_get(content_block_id=block_id)
        except BrazeNotFound:
            return None
        return selectors.content_block_snapshot(block)

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self.read_current(
            NAME_PREFIX + payload["name"] if action == "create" else identifier
        )
        return current is not None and same(current, _without_state(payload))

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        client = get_client(lane="background")
        fields = {
            "name": payload["name"],
            "content": payload["content"],
            # Braze keeps the old description when none is sent, and refuses a blank one.
            "description": payload.get("description") or None,
            "state": payload.get("state") or "active",
            "tags": list(payload.get("tags") or []),
        }
        if action == "create":
            result = client.content_block_create(**fields)
        else:
            result = client.content_block_update(content_block_id=identifier, **fields)
        block_id = result.content_block_id
        services.version_record_applied(
            resource_type=ResourceType.CONTENT_BLOCK,
            braze_id=block_id,
            identifier=identifier,
            state=fields["state"],
        )
        return {"content_block_id": block_id, "liquid_tag": result.liquid_tag}


class EmailTemplateApplier(_ContentApplier):
    label = "Email template"

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        if identifier.startswith(NEW_PREFIX):
            return None
        try:
            template = selectors.email_template_get(email_template_id=identifier)
        except BrazeNotFound:
            return None
        return selectors.email_template_snapshot(template)

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        if action != "create":
            current = self.read_current(identifier)
            return current is not None and same(current, payload)
        # A create whose answer was lost: the same template, made since, is this one.
        selectors.lists_forget()
        for row in selectors.email_template_rows():
            if row.template_name == payload["template_name"]:
                current = self.read_current(row.email_template_id)
                if current is not None and same(current, payload):
                    return True
        return False

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        client = get_client(lane="background")
        fields = {
            "template_name": payload["template_name"],
            "subject": payload["subject"],
            "body": payload["body"],
            "plaintext_body": payload.get("plaintext_body") or "",
            "preheader": payload.get("preheader") or "",
            "tags": list(payload.get("tags") or []),
            "should_inline_css": payload.get("should_inline_css"),
        }
        if action == "create":
            template_id = client.email_template_create(**fields)
        else:
            template_id = identifier
            client.email_template_update(email_template_id=template_id, **fields)
        services.version_record_applied(
            resource_type=ResourceType.EMAIL_TEMPLATE, braze_id=template_id, identifier=identifier
        )
        return {"email_template_id": template_id}


class PreferenceCenterApplier(_ContentApplier):
    label = "Preference center"

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        center_id = _id_by_name(
            identifier,
            lambda name: next(
                (
                    p.preference_center_api_id
                    for p in selectors.preference_center_rows()
                    if p.name == name
                ),
                None,
            ),
        )
        if center_id is None:
            return None
        try:
            center = selectors.preference_center_get(preference_center_id=center_id)
        except BrazeNotFound:
            return None
        return selectors.preference_center_snapshot(center)

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        key = NAME_PREFIX + payload["name"] if action == "create" else identifier
        current = self.read_current(key)
        return current is not None and same(current, payload)

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        client = get_client(lane="background")
        fields = {
            "preference_center_page_html": payload["preference_center_page_html"],
            "confirmation_page_html": payload["confirmation_page_html"],
            "preference_center_title": payload.get("preference_center_title") or None,
            "state": payload.get("state") or "active",
            "options": dict(payload.get("options") or {}),
        }
        if action == "create":
            result = client.preference_center_create(name=payload["name"], **fields)
        else:
            result = client.preference_center_update(preference_center_id=identifier, **fields)
        center_id = result.preference_center_api_id
        services.version_record_applied(
            resource_type=ResourceType.PREFERENCE_CENTER, braze_id=center_id, identifier=identifier
        )
        return {"preference_center_api_id": center_id, "liquid_tag": result.liquid_tag}


def register() -> None:
    from console.changes.appliers import register_applier

    register_applier(ResourceType.CONTENT_BLOCK, ContentBlockApplier())
    register_applier(ResourceType.EMAIL_TEMPLATE, EmailTemplateApplier())
    register_applier(ResourceType.PREFERENCE_CENTER, PreferenceCenterApplier())
