"""How approved change requests reach Braze for the three content resources.

Identifiers: a resource's Braze id, or `name:<name>` for a Content Block or preference
center not created yet (names are unique there, so an existing one is a conflict), or
`new:<token>` for a new email template (template names need not be unique).
After each write the applier re-reads Braze and stores that state as an applied version,
so the scheduled sync does not mistake the console's own change for an external one.

An update sends only the fields that differ from the base snapshot the change request
keeps (what Braze held when the change was proposed, and still holds: the apply step has
just checked), plus the fields Braze's docs require on that endpoint. Nothing the console
did not read or the person did not change is sent, so nothing it cannot see is overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal

from django.urls import reverse

from console.braze import BrazeNotFound, BrazeValidationError, get_client
from console.changes.appliers import merge_state
from console.changes.diff import same
from console.changes.models import ChangeRequest, ChangeState
from console.changes.resource_types import Identifiers, resource_type_register
from console.changes.resource_types import ResourceType as RegisteredType
from console.workspaces import workspace_default_key
from templates_app import selectors, services
from templates_app.models import ContentVersion, ResourceType
from templates_app.rules import content_block_state_notice

# Nothing more will be sent for these, so what applying would do no longer matters.
SETTLED = frozenset({ChangeState.APPLIED, ChangeState.REJECTED, ChangeState.CANCELLED})
NAME_PREFIX = "name:"
NEW_PREFIX = "new:"


def _without_state(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "state"}


def changed_fields(
    payload: dict[str, Any], base: dict[str, Any] | None, fields: tuple[str, ...]
) -> list[str]:
    """The `fields` whose proposed value differs from the base snapshot (all without one)."""
    return [
        f for f in fields if f in payload and (base is None or not same(payload[f], base.get(f)))
    ]


# What Braze answers when an update leaves out a field the older reference collection
# requires ("Content Block name cannot be blank", "Content cannot be blank").
_REQUIRED_BLOCK_FIELD_MISSING = {
    "content block name cannot be blank": "name",
    "content cannot be blank": "content",
}


def _refused_for_missing(exc: BrazeValidationError, sent: dict[str, Any]) -> bool:
    said = {d.id.strip().rstrip(".").lower() for d in exc.errors} | {
        exc.message.strip().rstrip(".").lower()
    }
    return any(
        field not in sent
        for message, field in _REQUIRED_BLOCK_FIELD_MISSING.items()
        if message in said
    )


def _block_state(payload: dict[str, Any]) -> Literal["active", "draft"]:
    return "draft" if payload.get("state") == "draft" else "active"


def _id_by_name(identifier: str, find: Callable[[str], str | None]) -> str | None:
    """A create's identifier is "name:<name>" until Braze assigns an id; resolve it from a
    fresh list so a retried create finds what an unanswered first attempt made."""
    if not identifier.startswith(NAME_PREFIX):
        return identifier
    selectors.lists_forget()
    return find(identifier.removeprefix(NAME_PREFIX))


class _ContentApplier:
    """What the three content appliers share: the proposed state for the diff."""

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


class ContentBlockApplier(_ContentApplier):
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
        if action != "create" and _block_state(payload) != selectors.content_block_state(
            content_block_id=identifier
        ):
            # Braze does not report the state: only the console's record of its own last
            # write says whether a publish (or a keep-as-draft) has reached Braze.
            return False
        current = self.read_current(
            NAME_PREFIX + payload["name"] if action == "create" else identifier
        )
        return current is not None and same(current, _without_state(payload))

    FIELDS = ("name", "description", "content", "tags")

    def review_notes(self, cr: Any) -> list[str]:
        """Plain-language warnings for the review pages, while the change can still be sent."""
        if cr.action != "update" or cr.state in SETTLED:
            return []
        notice = content_block_state_notice(
            state=(cr.payload or {}).get("state") or "active",
            known_state=selectors.content_block_state(content_block_id=cr.identifier),
        )
        return [notice] if notice else []

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action != "create":
            return self.apply_update(identifier, payload, base=None)
        client = get_client(lane="background")
        state = _block_state(payload)
        result = client.content_block_create(
            name=payload["name"],
            content=payload["content"],
            # Braze refuses a blank description.
            description=payload.get("description") or None,
            state=state,
            tags=list(payload.get("tags") or []),
        )
        return self._recorded(identifier, result, state)

    def apply_update(
        self, identifier: str, payload: dict[str, Any], *, base: dict[str, Any] | None
    ) -> dict[str, Any]:
        # Reference: "Update Content Block" (_docs/_api/endpoints/templates/
        # content_blocks_templates/post_update_content_block.md): every field but the id is
        # optional, and a state left out means active, so the state is always sent.
        client = get_client(lane="background")
        fields: dict[str, Any] = {}
        for field in changed_fields(payload, base, self.FIELDS):
            # Braze refuses a blank description and keeps the old one when none is sent.
            if field != "description" or payload[field]:
                fields[field] = list(payload[field]) if field == "tags" else payload[field]
        state = _block_state(payload)
        try:
            result = client.content_block_update(content_block_id=identifier, state=state, **fields)
        except BrazeValidationError as exc:
            # The older reference collection requires name and content on every update;
            # a refusal for one left out changed nothing, so send them both once.
            if not _refused_for_missing(exc, fields):
                raise
            fields |= {"name": payload["name"], "content": payload["content"]}
            result = client.content_block_update(content_block_id=identifier, state=state, **fields)
        return self._recorded(identifier, result, state)

    def _recorded(self, identifier: str, result: Any, state: str) -> dict[str, Any]:
        block_id = result.content_block_id
        services.version_record_applied(
            resource_type=ResourceType.CONTENT_BLOCK,
            braze_id=block_id,
            identifier=identifier,
            state=state,
        )
        return {"content_block_id": block_id, "liquid_tag": result.liquid_tag}


class EmailTemplateApplier(_ContentApplier):
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

    FIELDS = (
        "template_name",
        "subject",
        "body",
        "plaintext_body",
        "preheader",
        "tags",
        "should_inline_css",
    )

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action != "create":
            return self.apply_update(identifier, payload, base=None)
        client = get_client(lane="background")
        template_id = client.email_template_create(
            template_name=payload["template_name"],
            subject=payload["subject"],
            body=payload["body"],
            plaintext_body=payload.get("plaintext_body") or "",
            preheader=payload.get("preheader") or "",
            tags=list(payload.get("tags") or []),
            should_inline_css=payload.get("should_inline_css"),
        )
        return self._recorded(identifier, template_id)

    def apply_update(
        self, identifier: str, payload: dict[str, Any], *, base: dict[str, Any] | None
    ) -> dict[str, Any]:
        # Reference: "Update Email Template" (_docs/_api/endpoints/templates/email_templates/
        # post_update_email_template.md): all fields but the id are optional, at least one.
        fields: dict[str, Any] = {
            field: list(payload[field]) if field == "tags" else payload[field]
            for field in changed_fields(payload, base, self.FIELDS)
            # "Workspace default" cannot be sent: Braze takes only true or false.
            if payload[field] is not None
        }
        if fields:
            get_client(lane="background").email_template_update(
                email_template_id=identifier, **fields
            )
        return self._recorded(identifier, identifier)

    def _recorded(self, identifier: str, template_id: str) -> dict[str, Any]:
        services.version_record_applied(
            resource_type=ResourceType.EMAIL_TEMPLATE, braze_id=template_id, identifier=identifier
        )
        return {"email_template_id": template_id}


class PreferenceCenterApplier(_ContentApplier):
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

    # Reference: "Update preference center" (_docs/_api/endpoints/preference_center/
    # put_update_preference_center.md): both HTML pages are required on every update.
    REQUIRED = ("preference_center_page_html", "confirmation_page_html")
    OPTIONAL = ("preference_center_title", "state", "options")

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action != "create":
            return self.apply_update(identifier, payload, base=None)
        result = get_client(lane="background").preference_center_create(
            name=payload["name"],
            preference_center_page_html=payload["preference_center_page_html"],
            confirmation_page_html=payload["confirmation_page_html"],
            preference_center_title=payload.get("preference_center_title") or None,
            state=payload.get("state") or "active",
            options=dict(payload.get("options") or {}),
        )
        return self._recorded(identifier, result)

    def apply_update(
        self, identifier: str, payload: dict[str, Any], *, base: dict[str, Any] | None
    ) -> dict[str, Any]:
        # Options go only when the person changed them, and then exactly as edited, which
        # started from what Braze's view returned: options the view does not show (favicon
        # links set in the dashboard) are never replaced by an unchanged edit.
        fields: dict[str, Any] = {field: payload[field] for field in self.REQUIRED}
        for field in changed_fields(payload, base, self.OPTIONAL):
            if payload[field] or field == "options":
                fields[field] = dict(payload[field]) if field == "options" else payload[field]
        result = get_client(lane="background").preference_center_update(
            preference_center_id=identifier, **fields
        )
        return self._recorded(identifier, result)

    def _recorded(self, identifier: str, result: Any) -> dict[str, Any]:
        center_id = result.preference_center_api_id
        services.version_record_applied(
            resource_type=ResourceType.PREFERENCE_CENTER, braze_id=center_id, identifier=identifier
        )
        return {"preference_center_api_id": center_id, "liquid_tag": result.liquid_tag}


def _name_in(field: str) -> Callable[[ChangeRequest], str | None]:
    """A request's resource name: as proposed, else as Braze held it (a delete proposes none)."""

    def name_of(cr: ChangeRequest) -> str | None:
        for state in (cr.payload, cr.base_snapshot):
            if isinstance(state, dict) and state.get(field):
                return str(state[field])
        return None

    return name_of


def _pages_of(
    resource_type: ResourceType, id_param: str
) -> Callable[[Collection[str]], dict[str, str]]:
    """Detail pages of the items of `resource_type` the console has seen (its history)."""

    def urls_of(identifiers: Collection[str]) -> dict[str, str]:
        seen = (
            ContentVersion.objects.filter(
                workspace=workspace_default_key(),
                resource_type=resource_type,
                braze_id__in=identifiers,
            )
            .values_list("braze_id", flat=True)
            .distinct()
        )
        url_name = f"templates_app:{resource_type.value}_detail"
        return {braze_id: reverse(url_name, kwargs={id_param: braze_id}) for braze_id in seen}

    return urls_of


def register() -> None:
    # Identifiers: a resource's Braze id; until Braze assigns one, the name (unique for
    # Content Blocks and preference centers) or a random token (template names need not be).
    block = ContentBlockApplier()
    resource_type_register(
        RegisteredType(
            key=ResourceType.CONTENT_BLOCK,
            label="Content Block",
            applier=block,
            identifiers=Identifiers(NAME_PREFIX + "{name}", "{content_block_id}"),
            review_url="templates_app:change_preview",
            review_notes=block.review_notes,
            apply_update=block.apply_update,
            name_of=_name_in("name"),
            urls_of=_pages_of(ResourceType.CONTENT_BLOCK, "content_block_id"),
        )
    )
    template = EmailTemplateApplier()
    resource_type_register(
        RegisteredType(
            key=ResourceType.EMAIL_TEMPLATE,
            label="Email template",
            applier=template,
            identifiers=Identifiers(NEW_PREFIX + "{token}", "{email_template_id}"),
            review_url="templates_app:change_preview",
            apply_update=template.apply_update,
            name_of=_name_in("template_name"),
            urls_of=_pages_of(ResourceType.EMAIL_TEMPLATE, "email_template_id"),
        )
    )
    center = PreferenceCenterApplier()
    resource_type_register(
        RegisteredType(
            key=ResourceType.PREFERENCE_CENTER,
            label="Preference center",
            applier=center,
            identifiers=Identifiers(NAME_PREFIX + "{name}", "{preference_center_id}"),
            review_url="templates_app:change_preview",
            apply_update=center.apply_update,
            name_of=_name_in("name"),
            urls_of=_pages_of(ResourceType.PREFERENCE_CENTER, "preference_center_id"),
        )
    )
