"""Reads: a workspace's content as Braze holds it now, and a bundle's parts with their
outcomes.

The snapshot is read from Braze through the client, not from the console's history: an
import's parts keep it as the base their apply step checks against Braze, so it must be
what Braze holds now (the history is only as fresh as the last sync), and an export must
match what an import of it compares with, so that exporting and importing an unchanged
tree finds no difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from bundles.content import (
    CATALOG,
    CONTENT_BLOCK,
    EMAIL_TEMPLATE,
    KIND_LABELS,
    PREFERENCE_CENTER,
    FileError,
    Pick,
    PromotionPreview,
    WorkspaceContent,
    content_files,
    parts_errors,
    promotion_preview,
    unflat_state,
)
from bundles.models import BundlePart, PartOutcome
from console.braze import BrazeClient, get_client
from console.changes.models import ChangeRequest
from console.workspaces import Workspace, workspace_default
from templates_app import rules as content_rules
from templates_app import selectors as content_selectors
from templates_app.models import ContentVersion

PAGE_SIZE = content_selectors.PAGE_SIZE


class WorkspaceNotServed(LookupError):
    """The workspace is configured without the REST API key the console reads it with."""


def _client_for(workspace: Workspace) -> BrazeClient:
    """The one place a bundle asks for a workspace's client (its own key and limiter); its
    parts are applied in the change request's workspace (``change_request_apply``)."""
    if not workspace.api_key and workspace.key != workspace_default().key:
        raise WorkspaceNotServed(
            f"Workspace {workspace.label} has no REST API key configured: the console cannot "
            "read it."
        )
    return get_client(lane="background", workspace=workspace)


def workspace_servable(*, workspace: Workspace) -> None:
    """Raise WorkspaceNotServed unless this console can reach the workspace."""
    _client_for(workspace)


def _paged[T](read: Callable[[int | None], list[T]]) -> list[T]:
    rows: list[T] = []
    while True:
        # Braze refuses offset=0, so the first page is asked for without one.
        page = read(len(rows) or None)
        rows.extend(page)
        if len(page) < PAGE_SIZE:
            return rows


def _keep(
    content: WorkspaceContent, kind: str, pairs: list[tuple[str, str, dict[str, Any]]]
) -> None:
    """(name, id, snapshot) rows into the snapshot; a name held twice is kept by neither."""
    seen: dict[str, int] = {}
    for name, _, _ in pairs:
        seen[name] = seen.get(name, 0) + 1
    content.duplicates[kind] = sorted(n for n, count in seen.items() if count > 1)
    for name, braze_id, snapshot in sorted(pairs, key=lambda p: p[0]):
        if seen[name] == 1:
            content.of(kind)[name] = snapshot
            content.ids.setdefault(kind, {})[name] = braze_id


def workspace_content(*, workspace: Workspace) -> WorkspaceContent:
    """Everything a bundle can change in the workspace, as Braze holds it now."""
    client = _client_for(workspace)
    content = WorkspaceContent(workspace=workspace.key)
    blocks = _paged(lambda offset: client.content_block_list(limit=PAGE_SIZE, offset=offset))
    _keep(
        content,
        CONTENT_BLOCK,
        [
            (
                b.name,
                b.content_block_id,
                content_selectors.content_block_snapshot(
                    client.content_block_info(content_block_id=b.content_block_id)
                ),
            )
            for b in blocks
        ],
    )
    templates = _paged(lambda offset: client.email_template_list(limit=PAGE_SIZE, offset=offset))
    _keep(
        content,
        EMAIL_TEMPLATE,
        [
            (
                t.template_name,
                t.email_template_id,
                content_selectors.email_template_snapshot(
                    client.email_template_info(email_template_id=t.email_template_id)
                ),
            )
            for t in templates
        ],
    )
    _keep(
        content,
        PREFERENCE_CENTER,
        [
            (
                p.name,
                p.preference_center_api_id,
                content_selectors.preference_center_snapshot(
                    client.preference_center_view(preference_center_id=p.preference_center_api_id)
                ),
            )
            for p in client.preference_center_list()
        ],
    )
    _keep(
        content,
        CATALOG,
        [
            (
                c.name,
                c.name,
                {
                    "name": c.name,
                    "description": c.description,
                    "fields": [{"name": f.name, "type": f.type} for f in c.fields],
                },
            )
            for c in client.catalog_list()
        ],
    )
    return content


@dataclass(frozen=True)
class PartView:
    """One part as the bundle's page shows it."""

    position: int
    kind: str
    label: str
    name: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    outcome: str  # a PartOutcome, or "" before the first apply
    message: str


def bundle_part_views(*, change_request: ChangeRequest) -> list[PartView]:
    outcomes = {
        p.position: p for p in BundlePart.objects.filter(change_request_id=change_request.pk)
    }
    base = change_request.base_snapshot or {}
    views = []
    for position, part in enumerate(change_request.payload.get("parts", [])):
        recorded = outcomes.get(position)
        views.append(
            PartView(
                position=position,
                kind=part["kind"],
                label=KIND_LABELS.get(part["kind"], part["kind"]),
                name=part["name"],
                action=part["action"],
                before=part_before(base, part),
                after=part_after(part),
                outcome=recorded.outcome if recorded else "",
                message=recorded.message if recorded else "",
            )
        )
    return views


def part_before(base: dict[str, Any], part: dict[str, Any]) -> dict[str, Any] | None:
    """A part's object as Braze held it at the proposal, from the bundle's base snapshot."""
    return unflat_state(part["kind"], part["name"], base)


def part_after(part: dict[str, Any]) -> dict[str, Any]:
    """A part's object as it will be: its payload without the console-only block state."""
    return {k: v for k, v in part["payload"].items() if k != "state"}


def part_outcome_summary(*, change_request: ChangeRequest) -> list[str]:
    """One sentence per part for the change request's page."""
    lines = []
    for view in bundle_part_views(change_request=change_request):
        what = f'{view.position + 1}. {view.action.title()} {view.label} "{view.name}"'
        if view.outcome == PartOutcome.APPLIED:
            lines.append(f"{what}: applied. {view.message}".strip())
        elif view.outcome:
            lines.append(f"{what}: {PartOutcome(view.outcome).label.lower()}. {view.message}")
        else:
            lines.append(f"{what}: not applied yet.")
    return lines


def workspace_files(*, workspace: Workspace) -> tuple[dict[str, bytes], list[str]]:
    """The workspace's tree as the export writes it, and why anything was left out."""
    content = workspace_content(workspace=workspace)
    notices = [
        f'{KIND_LABELS[kind]} "{name}" is left out: the workspace holds more than one with '
        "that name."
        for kind, names in sorted(content.duplicates.items())
        for name in names
    ]
    return content_files(content), notices


# --- promotion --------------------------------------------------------------------------------

PROMOTABLE = (CONTENT_BLOCK, EMAIL_TEMPLATE, PREFERENCE_CENTER, CATALOG)


def workspace_names(*, workspace: Workspace) -> dict[str, list[str]]:
    """The names of everything a promotion can pick in the workspace, by kind: list reads
    only (a name held twice is listed once; the preview says it is left out)."""
    client = _client_for(workspace)
    blocks = _paged(lambda offset: client.content_block_list(limit=PAGE_SIZE, offset=offset))
    templates = _paged(lambda offset: client.email_template_list(limit=PAGE_SIZE, offset=offset))
    return {
        CONTENT_BLOCK: sorted({b.name for b in blocks}),
        EMAIL_TEMPLATE: sorted({t.template_name for t in templates}),
        PREFERENCE_CENTER: sorted({p.name for p in client.preference_center_list()}),
        CATALOG: sorted({c.name for c in client.catalog_list()}),
    }


@dataclass
class Promotion:
    """What promoting some objects from one workspace to another would do, read now."""

    source: Workspace
    target: Workspace
    picks: list[Pick]
    preview: PromotionPreview
    target_content: WorkspaceContent
    # Renames the source's content history knows of, in words.
    renames: list[str] = field(default_factory=list)
    # What Braze would refuse, per part, in Braze's words.
    errors: list[FileError] = field(default_factory=list)
    # The state the console last gave each source block the promotion creates, by name.
    source_states: dict[str, str] = field(default_factory=dict)
    # What Braze may refuse: tags the target may hold though nothing there uses them
    # (Braze lists no tags, so the console knows only those in use).
    warnings: list[FileError] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """The bundle this preview would open: the proposal must be the bundle previewed."""
        parts = [(p.kind, p.name, p.action, p.before, p.after) for p in self.preview.changes.parts]
        text = json.dumps([self.target.key, parts], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _renames(
    *, source: WorkspaceContent, target: WorkspaceContent, preview: PromotionPreview
) -> list[str]:
    """Parts the source's history knows under an earlier name that the target still holds
    (and not the new one): promoted by name, such a part is a new object beside the old."""
    found: list[str] = []
    for part in preview.changes.parts:
        braze_id = source.ids.get(part.kind, {}).get(part.name)
        if part.action != "create" or braze_id is None or part.kind == CATALOG:
            continue
        earlier = (
            ContentVersion.objects.filter(
                workspace=source.workspace, resource_type=part.kind, braze_id=braze_id
            )
            .exclude(name=part.name)
            .order_by("-version")
            .values_list("name", flat=True)
        )
        held = target.items.get(part.kind, {})
        for old in dict.fromkeys(earlier):
            if old in held:
                found.append(
                    f'{part.label} was called "{old}" before (the content history of '
                    f'{source.workspace}); the target still holds "{old}": the promotion '
                    f'creates "{part.name}" beside it and leaves "{old}" as it is.'
                )
                break
    return found


def promotion_read(
    *,
    source: Workspace,
    target: Workspace,
    picks: Iterable[Pick],
    declined: Collection[str] = (),
) -> Promotion:
    """Read both workspaces from Braze and compare the picks: the preview a promotion shows
    and the bundle it opens."""
    picks = list(picks)
    source_content = workspace_content(workspace=source)
    target_content = workspace_content(workspace=target)
    preview = promotion_preview(
        source=source_content, target=target_content, picks=picks, declined=declined
    )
    parts = preview.changes.parts
    states = {
        name: content_selectors.content_block_state(content_block_id=braze_id)
        for name, braze_id in target_content.ids.get(CONTENT_BLOCK, {}).items()
        if any(p.kind == CONTENT_BLOCK and p.name == name for p in parts)
    }
    source_ids = source_content.ids.get(CONTENT_BLOCK, {})
    source_states = {
        p.name: state
        for p in parts
        if p.kind == CONTENT_BLOCK and p.action == "create" and p.name in source_ids
        if (state := content_selectors.content_block_state(content_block_id=source_ids[p.name]))
    }
    errors = parts_errors(parts, current=target_content, block_states=states)
    unknown_tags = [e for e in errors if e.message == f"tags: {content_rules.TAGS_NOT_FOUND}"]
    return Promotion(
        source=source,
        target=target,
        picks=picks,
        preview=preview,
        target_content=target_content,
        renames=_renames(source=source_content, target=target_content, preview=preview),
        errors=[e for e in errors if e not in unknown_tags],
        source_states=source_states,
        warnings=unknown_tags,
    )
