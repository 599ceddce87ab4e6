"""How an approved bundle reaches Braze: each part through its own kind's applier (the
registered Content Block, email template and preference center types), in the order the
bundle keeps (a block before what includes it).

The bundle's snapshot is every part's fields, keyed by kind, name and field
(`content.flat_state`). The core's conflict check compares it with `read_current`, which
shows a part Braze already holds as proposed as its base: so a retry after some parts
were applied is no conflict, and any other change to a part's object since the preview is
one. `apply` records each part's outcome (and its audit entry) as Braze answers it, skips
the parts already applied, and does not send a part while a block it includes in the same
bundle is not applied; a failed part fails the request, whose retry sends only what is
not applied yet.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from bundles.content import CATALOG, LAYOUTS, flat_state, includes, part_key
from bundles.models import BundlePart, PartOutcome
from bundles.selectors import part_after, part_before, part_outcome_summary
from console.audit import events
from console.audit.services import Outcome, audit_append
from console.braze.errors import BrazeError, describe_error
from console.changes.appliers import ApplyRefused
from console.changes.models import ChangeRequest
from console.changes.resource_types import (
    Identifiers,
    ResourceType,
    resource_type_get,
    resource_type_register,
)
from console.roles import Capability
from console.workspaces import workspace_get
from templates_app import selectors as content_selectors
from templates_app.appliers import SETTLED
from templates_app.rules import content_block_state_notice

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "content_bundle"
BUNDLE_PREFIX = "bundle:"
NAME_PREFIX = "name:"


class PartsFailed(ApplyRefused):
    """Some parts were not applied; the others' outcomes are recorded."""


def _bundle(identifier: str) -> ChangeRequest:
    return ChangeRequest.objects.get(resource_type=RESOURCE_TYPE, identifier=identifier)


def _part_identifier(part: dict[str, Any]) -> str:
    """The identifier the part's own applier reads: the Braze id of an update, the name of
    a create (found by name, so an object made since the preview is a conflict)."""
    if part["action"] == "update" or part["kind"] == CATALOG:
        return str(part["identifier"])
    return NAME_PREFIX + str(part["name"])


def _read_part(part: dict[str, Any]) -> dict[str, Any] | None:
    kind = part["kind"]
    identifier = _part_identifier(part)
    if kind == "email_template" and identifier.startswith(NAME_PREFIX):
        # Template names need not be unique, so its applier knows no "name:" identifier.
        content_selectors.lists_forget()
        name = identifier.removeprefix(NAME_PREFIX)
        found = [
            t.email_template_id
            for t in content_selectors.email_template_rows()
            if t.template_name == name
        ]
        if not found:
            return None
        identifier = found[0]
    return resource_type_get(kind).applier.read_current(identifier)


def _part_applied(part: dict[str, Any]) -> bool:
    applier = resource_type_get(part["kind"]).applier
    identifier = str(part["identifier"])
    return applier.is_applied(part["action"], identifier, part["payload"])


def _check_workspace(payload: dict[str, Any]) -> None:
    # Lazy: the workspace check reads settings, and this module loads while apps load.
    from bundles.selectors import WorkspaceNotServed, workspace_servable

    try:
        workspace_servable(workspace=workspace_get(payload["workspace"]))
    except (LookupError, WorkspaceNotServed) as exc:
        raise ApplyRefused(str(exc)) from None


class BundleApplier:
    def read_current(self, identifier: str) -> dict[str, Any] | None:
        cr = _bundle(identifier)
        _check_workspace(cr.payload)
        base = cr.base_snapshot or {}
        state: dict[str, Any] = {}
        for part in cr.payload["parts"]:
            before = part_before(base, part)
            if _part_applied(part):
                current = before
            else:
                current = _read_part(part)
                if current is not None:
                    current = {f: current.get(f) for f in LAYOUTS[part["kind"]].fields}
            state |= flat_state(part["kind"], part["name"], current)
        return state

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        _check_workspace(payload)
        return all(_part_applied(part) for part in payload["parts"])

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        state = dict(base or {})
        for part in payload["parts"]:
            state |= flat_state(part["kind"], part["name"], part_after(part))
        return state

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        cr = _bundle(identifier)
        _check_workspace(payload)
        base = cr.base_snapshot or {}
        recorded = {p.position: p for p in BundlePart.objects.filter(change_request_id=cr.pk)}
        applied: set[str] = set()
        failed: list[str] = []
        for position, part in enumerate(payload["parts"]):
            key = part_key(part["kind"], part["name"])
            earlier = recorded.get(position)
            if earlier is not None and earlier.outcome == PartOutcome.APPLIED:
                applied.add(key)
                continue
            waiting_for = sorted(
                name
                for name in includes(part["kind"], part_after(part))
                if any(
                    p["kind"] == "content_block" and p["name"] == name
                    for p in payload["parts"][:position]
                )
                and part_key("content_block", name) not in applied
            )
            if waiting_for:
                message = (
                    "Not sent: it includes "
                    + ", ".join(f'"{n}"' for n in waiting_for)
                    + ", not applied yet."
                )
                _record(cr, position, part, PartOutcome.WAITING, message)
                failed.append(f"{part['name']} (waiting)")
                continue
            try:
                if _part_applied(part):
                    response: dict[str, Any] = {"note": "Braze already held this part."}
                else:
                    response = _send(part, before=part_before(base, part))
            except BrazeError as exc:
                message = describe_error(exc)
                error_ids = [d.id for d in getattr(exc, "errors", ()) if getattr(d, "id", "")]
                error_id = ", ".join(error_ids) or type(exc).__name__
                _record(cr, position, part, PartOutcome.FAILED, message, error_id=error_id)
                failed.append(f"{part['name']} ({message})")
                continue
            except ApplyRefused as exc:
                _record(cr, position, part, PartOutcome.FAILED, str(exc), error_id="refused")
                failed.append(f"{part['name']} ({exc})")
                continue
            except Exception as exc:
                # One part's fault must not leave the others' outcomes unknown.
                logger.exception("applying part %s of change request %s failed", position, cr.pk)
                message = "The console could not complete this part (an internal error)."
                _record(
                    cr, position, part, PartOutcome.FAILED, message, error_id=type(exc).__name__
                )
                failed.append(f"{part['name']} ({message})")
                continue
            _record(cr, position, part, PartOutcome.APPLIED, "", response=response)
            applied.add(key)
        if failed:
            raise PartsFailed(
                f"{len(applied)} of {len(payload['parts'])} parts applied; not applied: "
                + "; ".join(failed)
                + ". A retry sends only the parts not applied."
            )
        return {"parts": len(payload["parts"]), "applied": len(applied)}


def _send(part: dict[str, Any], *, before: dict[str, Any] | None) -> dict[str, Any]:
    kind = resource_type_get(part["kind"])
    identifier = str(part["identifier"])
    if part["action"] == "update" and kind.apply_update is not None:
        # The bundle's conflict check has just found Braze holding `before`.
        return kind.apply_update(identifier, part["payload"], base=before)
    return kind.applier.apply(part["action"], identifier, part["payload"])


_PART_EVENTS = {
    PartOutcome.APPLIED: (events.BUNDLE_PART_APPLIED, Outcome.SUCCESS),
    PartOutcome.FAILED: (events.BUNDLE_PART_FAILED, Outcome.FAILURE),
    PartOutcome.WAITING: (events.BUNDLE_PART_WAITING, Outcome.REFUSED),
}


def _record(
    cr: ChangeRequest,
    position: int,
    part: dict[str, Any],
    outcome: PartOutcome,
    message: str,
    *,
    error_id: str = "",
    response: dict[str, Any] | None = None,
) -> None:
    """The part's outcome and its audit entry, together, as soon as Braze has answered."""
    action, audit_outcome = _PART_EVENTS[outcome]
    with transaction.atomic(durable=True):
        row, _ = BundlePart.objects.select_for_update().get_or_create(
            change_request_id=cr.pk,
            position=position,
            defaults={"kind": part["kind"], "name": part["name"], "outcome": outcome},
        )
        row.outcome, row.message, row.error_id, row.response = outcome, message, error_id, response
        row.attempts += 1
        row.save()
        audit_append(
            actor=cr.apply_requested_by or cr.author,
            action=action,
            outcome=audit_outcome,
            resource_type=part["kind"],
            resource_id=part["name"],
            change_request_id=cr.pk,
            data={
                "workspace": cr.payload.get("workspace", ""),
                "bundle": cr.identifier,
                "part": position,
                "action": part["action"],
                "braze_id": part.get("identifier", ""),
                "message": message,
                "error_id": error_id,
                "response": response,
            },
        )


def _review_notes(cr: ChangeRequest) -> list[str]:
    """Each part's outcome, and what a block update does to a block's state."""
    notes = part_outcome_summary(change_request=cr)
    if cr.state in SETTLED:
        return notes
    for part in cr.payload.get("parts", []):
        if part["kind"] != "content_block" or part["action"] != "update":
            continue
        notice = content_block_state_notice(
            state=part["payload"].get("state") or "active",
            known_state=content_selectors.content_block_state(
                content_block_id=str(part["identifier"])
            ),
        )
        if notice:
            notes.append(f'Content Block "{part["name"]}": {notice}')
    return notes


def register() -> None:
    resource_type_register(
        ResourceType(
            key=RESOURCE_TYPE,
            label="Content bundle",
            applier=BundleApplier(),
            identifiers=Identifiers(BUNDLE_PREFIX + "{token}"),
            propose=Capability.PROPOSE,
            review=Capability.REVIEW,
            review_url="bundles:review",
            review_notes=_review_notes,
        )
    )
