"""Writes: a bundle change request from the differences between two snapshots of content,
the import of a tree of files, and the export of one (to a directory or a zip)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from bundles.appliers import BUNDLE_PREFIX, NAME_PREFIX, RESOURCE_TYPE
from bundles.archive import TreeRefused, tree_problems
from bundles.content import (
    CATALOG,
    CONTENT_BLOCK,
    EMAIL_TEMPLATE,
    KIND_LABELS,
    Changes,
    DependencyCycle,
    FileError,
    Part,
    WorkspaceContent,
    content_changes,
    content_from_files,
    flat_state,
    parts_errors,
)
from bundles.selectors import Promotion, workspace_content
from console.audit import events
from console.changes.models import ChangeAction, ChangeRequest
from console.changes.services import ChangeRequestError, change_request_propose
from console.workspaces import Workspace
from templates_app import selectors as content_selectors


def _part_payload(
    part: Part, *, current: WorkspaceContent, created_states: Mapping[str, str]
) -> dict[str, Any]:
    braze_id = current.ids.get(part.kind, {}).get(part.name)
    if part.kind == CATALOG:
        identifier = part.name  # a catalog's name is its identifier in Braze too
    elif part.action == "update":
        identifier = str(braze_id)
    elif part.kind == EMAIL_TEMPLATE:
        identifier = f"new:{uuid.uuid4().hex}"
    else:
        identifier = NAME_PREFIX + part.name
    payload = dict(part.after)
    if part.kind == CONTENT_BLOCK:
        # Braze never reports a block's state: keep the one the console last gave it, so
        # an import does not publish a draft.
        known = (
            content_selectors.content_block_state(content_block_id=braze_id) if braze_id else None
        )
        payload["state"] = known or created_states.get(part.name) or "active"
    return {
        "kind": part.kind,
        "name": part.name,
        "action": part.action,
        "identifier": identifier,
        "payload": payload,
    }


def bundle_propose(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    current: WorkspaceContent,
    changes: Changes,
    title: str,
    submit: bool = True,
    also_audit: tuple[str, dict[str, Any]] | None = None,
    created_states: Mapping[str, str] | None = None,
) -> ChangeRequest:
    """One change request holding every part of `changes`, in their order. Its base is
    each part's object as `current` (read from Braze just now) holds it. `created_states`:
    the state a Content Block this bundle creates gets, by name (default "active")."""
    if not changes.parts:
        raise ChangeRequestError("There is nothing to change.")
    base: dict[str, Any] = {}
    for part in changes.parts:
        base |= flat_state(part.kind, part.name, part.before)
    payload = {
        "workspace": workspace.key,
        "parts": [
            _part_payload(p, current=current, created_states=created_states or {})
            for p in changes.parts
        ],
    }
    return change_request_propose(
        actor=actor,
        resource_type=RESOURCE_TYPE,
        identifier=BUNDLE_PREFIX + uuid.uuid4().hex,
        action=ChangeAction.UPDATE,
        payload=payload,
        base_snapshot=base,
        title=title,
        submit=submit,
        workspace=workspace.key,
        also_audit=also_audit,
    )


@dataclass
class ImportResult:
    change_request: ChangeRequest | None
    changes: Changes
    messages: list[str] = field(default_factory=list)


def _title(workspace: Workspace, parts: list[Part]) -> str:
    counts: dict[str, int] = {}
    for part in parts:
        counts[part.kind] = counts.get(part.kind, 0) + 1
    what = ", ".join(
        f"{n} {KIND_LABELS[k].lower()}{'s' if n > 1 else ''}" for k, n in counts.items()
    )
    return f"Import into {workspace.label}: {what}"[:200]


def content_import(
    *,
    actor: AbstractBaseUser,
    workspace: Workspace,
    files: dict[str, bytes],
    submit: bool = True,
) -> ImportResult:
    """Compare a tree with the workspace and open one bundle change request with exactly
    the differences (none when there are none). Malformed files refuse the whole tree."""
    problems = tree_problems(files)
    if problems:
        raise TreeRefused(problems)
    proposed, errors = content_from_files(files, workspace=workspace.key)
    if errors:
        raise TreeRefused(errors)
    current = workspace_content(workspace=workspace)
    try:
        changes = content_changes(current=current, proposed=proposed)
    except DependencyCycle as exc:
        raise TreeRefused([FileError("content_blocks/", str(exc))]) from None
    known_states = {
        name: content_selectors.content_block_state(content_block_id=braze_id)
        for name, braze_id in current.ids.get(CONTENT_BLOCK, {}).items()
        if any(p.kind == CONTENT_BLOCK and p.name == name for p in changes.parts)
    }
    refused = parts_errors(changes.parts, current=current, block_states=known_states)
    if refused:
        raise TreeRefused(refused)
    messages = [*changes.notices, *changes.missing]
    if not changes.parts:
        messages.insert(0, f"The files match {workspace.label}: no change request was opened.")
        return ImportResult(None, changes, messages)
    cr = bundle_propose(
        actor=actor,
        workspace=workspace,
        current=current,
        changes=changes,
        title=_title(workspace, changes.parts),
        submit=submit,
    )
    return ImportResult(cr, changes, messages)


class PromotionRefused(ChangeRequestError):
    """The promotion cannot be opened as previewed; the message says why."""


def promotion_propose(
    *, actor: AbstractBaseUser, promotion: Promotion, digest: str
) -> ChangeRequest:
    """Open the promotion as one bundle change request in its target workspace, pending
    review there, with its own audit entry naming both workspaces and every part. `digest`
    is the preview's the proposer read: a bundle that is no longer that one is refused."""
    parts = promotion.preview.changes.parts
    if not parts:
        raise PromotionRefused(
            "Nothing to promote: the target already holds the picks as they are."
        )
    if promotion.errors:
        raise PromotionRefused("Braze would refuse some parts: see the preview.")
    if digest != promotion.digest:
        raise PromotionRefused(
            "The workspaces changed since the preview: read the new preview, then open it."
        )
    source, target = promotion.source, promotion.target
    objects = [f"{KIND_LABELS[p.kind]} {p.name}" for p in parts]
    return bundle_propose(
        actor=actor,
        workspace=target,
        current=promotion.target_content,
        changes=promotion.preview.changes,
        title=f"Promote from {source.label} to {target.label}: {', '.join(objects)}"[:200],
        # A draft in the source stays a draft: promoting must not publish it.
        created_states=promotion.source_states,
        also_audit=(
            events.BUNDLE_PROMOTED,
            {
                "source": source.key,
                "source_label": source.label,
                "target": target.key,
                "target_label": target.label,
                "objects": objects,
                "parts": [{"kind": p.kind, "name": p.name, "action": p.action} for p in parts],
            },
        ),
    )
