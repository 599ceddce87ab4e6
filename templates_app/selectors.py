"""Reads: email templates, Content Blocks and preference centers from Braze (briefly
cached), and the console's own history of them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from catalogs.models import Catalog, CatalogItem, CatalogSelection
from catalogs.schema_selectors import PREVIEW_SCAN_LIMIT, catalog_selection_preview
from console.audit.hashing import canonical_json
from console.braze import BrazeError, get_client
from console.braze.client import (
    ContentBlock,
    ContentBlockSummary,
    EmailTemplate,
    EmailTemplateSummary,
    PreferenceCenter,
    PreferenceCenterSummary,
)
from console.workspaces import workspace_active, workspace_default_key
from templates_app.models import ContentVersion, PreviewProfile, PreviewSettings, ResourceType
from templates_app.personalize import BlockSource, Person, Selected, TranslationLocale
from templates_app.rules import Workspace

LIST_CACHE_SECONDS = 30
PAGE_SIZE = 1000  # Braze's maximum for both list endpoints
_GENERATION_KEY = "templates_app:lists:generation"


def _cached[T](key: str, load: Callable[[], T]) -> T:
    """Braze lists are cached for a few seconds, per workspace (each its own content, and
    syncs of two workspaces run side by side); a write by the console starts afresh."""
    generation = cache.get_or_set(_GENERATION_KEY, 1, timeout=None)
    full_key = f"templates_app:lists:{generation}:{workspace_active().key}:{key}"
    value: T | None = cache.get(full_key)
    if value is None:
        value = load()
        cache.set(full_key, value, LIST_CACHE_SECONDS)
    return value


def lists_forget() -> None:
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 2, timeout=None)


def digest_of(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(snapshot).encode()).hexdigest()


# --- lists as the screens show them -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentFilters:
    """What a list screen asks for; an empty value does not narrow the list. A kind of
    content ignores the filters it has no use for (preference centers have no tags)."""

    q: str = ""
    tag: str = ""
    type: str = ""
    modified_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class Listing[T]:
    rows: list[T]
    # Every tag on the rows before the name, tag and type filters: the tag menu's choices.
    tags: list[str]


def _named(name: str, q: str) -> bool:
    return not q or q.lower() in name.lower()


def _tagged(tags: list[str], tag: str) -> bool:
    return not tag or tag in tags


def _all_tags(rows: list[EmailTemplateSummary] | list[ContentBlockSummary]) -> list[str]:
    return sorted({t for row in rows for t in row.tags})


# --- email templates -----------------------------------------------------------------------


def email_template_rows(*, modified_after: datetime | None = None) -> list[EmailTemplateSummary]:
    """Every template the API returns, all pages read (drag-and-drop ones never are)."""

    def load() -> list[EmailTemplateSummary]:
        client, rows, offset = get_client(), [], 0
        while True:
            page = client.email_template_list(
                modified_after=modified_after, limit=PAGE_SIZE, offset=offset or None
            )
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows
            offset += len(page)

    stamp = modified_after.isoformat() if modified_after else ""
    return _cached(f"email_templates:{stamp}", load)


def email_template_listing(*, filters: ContentFilters) -> Listing[EmailTemplateSummary]:
    """Braze narrows the list by date; the console by name and tag."""
    rows = email_template_rows(modified_after=filters.modified_after)
    return Listing(
        [t for t in rows if _named(t.template_name, filters.q) and _tagged(t.tags, filters.tag)],
        _all_tags(rows),
    )


def email_template_get(*, email_template_id: str) -> EmailTemplate:
    return get_client().email_template_info(email_template_id=email_template_id)


def email_template_snapshot(template: EmailTemplate) -> dict[str, Any]:
    """The fields the console edits, as compared for conflicts and kept in history."""
    return {
        "template_name": template.template_name,
        "subject": template.subject or "",
        "preheader": template.preheader or "",
        "body": template.body or "",
        "plaintext_body": template.plaintext_body or "",
        "should_inline_css": template.should_inline_css,
        "tags": list(template.tags),
    }


# --- content blocks ------------------------------------------------------------------------


def content_block_rows() -> list[ContentBlockSummary]:
    def load() -> list[ContentBlockSummary]:
        client, rows, offset = get_client(), [], 0
        while True:
            # Braze refuses offset=0, so the first page is asked for without one.
            page = client.content_block_list(limit=PAGE_SIZE, offset=offset or None)
            rows.extend(page)
            if len(page) < PAGE_SIZE:
                return rows
            offset += len(page)

    return _cached("content_blocks", load)


def content_block_listing(*, filters: ContentFilters) -> Listing[ContentBlockSummary]:
    rows = content_block_rows()
    return Listing(
        [
            b
            for b in rows
            if _named(b.name, filters.q)
            and _tagged(b.tags, filters.tag)
            and (not filters.type or b.content_type == filters.type)
        ],
        _all_tags(rows),
    )


def content_block_get(*, content_block_id: str, inclusion_data: bool = False) -> ContentBlock:
    return get_client().content_block_info(
        content_block_id=content_block_id, include_inclusion_data=inclusion_data
    )


def content_block_snapshot(block: ContentBlock) -> dict[str, Any]:
    return {
        "name": block.name,
        "description": block.description or "",
        "content": block.content,
        "tags": list(block.tags),
    }


def content_block_state(*, content_block_id: str) -> str | None:
    """The state the console last gave the block; None when it never set one."""
    return (
        ContentVersion.objects.filter(
            resource_type=ResourceType.CONTENT_BLOCK, braze_id=content_block_id
        )
        .exclude(state="")
        .order_by("-version")
        .values_list("state", flat=True)
        .first()
    )


# --- preference centers --------------------------------------------------------------------


def preference_center_rows() -> list[PreferenceCenterSummary]:
    return _cached("preference_centers", lambda: get_client().preference_center_list())


def preference_center_listing(*, filters: ContentFilters) -> Listing[PreferenceCenterSummary]:
    return Listing([p for p in preference_center_rows() if _named(p.name, filters.q)], [])


def preference_center_get(*, preference_center_id: str) -> PreferenceCenter:
    return get_client().preference_center_view(preference_center_id=preference_center_id)


def preference_center_snapshot(center: PreferenceCenter) -> dict[str, Any]:
    return {
        "name": center.name,
        "preference_center_title": center.preference_center_title or "",
        "preference_center_page_html": center.preference_center_page_html or "",
        "confirmation_page_html": center.confirmation_page_html or "",
        "state": center.state or "",
        "options": dict(center.preference_center_options or {}),
    }


# --- what the rules need to know ------------------------------------------------------------


def workspace_known() -> Workspace:
    """Tags, block names and preference-center names Braze holds, as far as its lists say.

    Braze has no tag list endpoint: a tag counts as existing once any template or Content
    Block carries it.
    """
    templates, blocks = email_template_rows(), content_block_rows()
    tags = {t for row in templates for t in row.tags} | {t for row in blocks for t in row.tags}
    return Workspace(
        tags=frozenset(tags),
        block_names=frozenset(b.name for b in blocks),
        preference_center_names=frozenset(p.name for p in preference_center_rows()),
    )


# --- history -------------------------------------------------------------------------------


def version_list(
    *, resource_type: str, braze_id: str, workspace: str | None = None
) -> QuerySet[ContentVersion]:
    """A resource's versions in ``workspace`` (a key; default: the default workspace)."""
    return ContentVersion.objects.filter(
        workspace=workspace if workspace is not None else workspace_default_key(),
        resource_type=resource_type,
        braze_id=braze_id,
    )


def version_latest(
    *, resource_type: str, braze_id: str, workspace: str | None = None
) -> ContentVersion | None:
    versions = version_list(resource_type=resource_type, braze_id=braze_id, workspace=workspace)
    return versions.order_by("-version").first()


# --- previewing as a person ---------------------------------------------------------------


def content_block_source(*, overrides: dict[str, str] | None = None) -> BlockSource:
    """Content Blocks by name as the content history last saw them (`overrides` first: a
    change under review previews with its own new content)."""
    known = dict(overrides or {})

    def content(name: str) -> str | None:
        if name in known:
            return known[name]
        named = (
            ContentVersion.objects.filter(
                workspace=workspace_default_key(),
                resource_type=ResourceType.CONTENT_BLOCK,
                name=name,
            )
            .order_by("-version")
            .first()
        )
        if named is None:
            return None
        latest = version_latest(resource_type=ResourceType.CONTENT_BLOCK, braze_id=named.braze_id)
        # A block renamed since holds the name no more.
        if latest is None or latest.name != name:
            return None
        return str(latest.snapshot.get("content") or "")

    return content


class MirrorCatalogs:
    """What catalog tags read in a preview: the local mirror (catalogs app) as last synced,
    and the selections the console created, evaluated from their stored definition."""

    def items(self, catalog: str, item_ids: Sequence[str]) -> list[dict[str, Any]] | None:
        found = Catalog.objects.filter(workspace=workspace_default_key(), name=catalog).first()
        if found is None:
            return None
        rows = dict(
            CatalogItem.objects.filter(catalog=found, item_id__in=item_ids).values_list(
                "item_id", "data"
            )
        )
        return [{"id": item_id, **rows[item_id]} for item_id in item_ids if item_id in rows]

    def selection(
        self, catalog: str, selection: str, personalize: Callable[[str], str]
    ) -> Selected:
        found = Catalog.objects.filter(workspace=workspace_default_key(), name=catalog).first()
        if found is None:
            return Selected(problem=f'the console has no mirror of a catalog named "{catalog}"')
        known = CatalogSelection.objects.filter(catalog=found, name=selection).first()
        if known is None:
            return Selected(
                problem=f'the console does not know selection "{selection}" of catalog '
                f'"{catalog}": Braze lists no selections, so it knows only those made here'
            )
        definition = dict(known.definition)
        # Braze allows Liquid in filter values ("Selections"): each is the person's value.
        definition["filters"] = [
            {**f, "value": personalize(f["value"])}
            if isinstance(f.get("value"), str) and ("{{" in f["value"] or "{%" in f["value"])
            else f
            for f in definition.get("filters", [])
        ]
        items, partial = catalog_selection_preview(catalog=found, definition=definition)
        notes = []
        if partial:
            notes.append(
                f'selection "{selection}" was evaluated over the first '
                f"{PREVIEW_SCAN_LIMIT:,} mirrored items of {catalog} only"
            )
        if not definition.get("sort_field"):
            notes.append(
                f'selection "{selection}" has no sort: Braze returns its items in random '
                "order, the preview in the mirror's"
            )
        return Selected(items=items, notes=tuple(notes))


def content_translations(*, resource_type: str, braze_id: str) -> list[TranslationLocale] | None:
    """Braze's translations of one email template or Content Block by locale, or None when
    the console cannot read them (another kind, an id Braze has not given yet, a key
    without the permission, or a workspace without multi-language support)."""
    if not braze_id or ":" in braze_id:
        return None  # a create under review: Braze has not given it an id yet
    client = get_client()
    try:
        if resource_type == ResourceType.EMAIL_TEMPLATE:
            found = client.email_template_translations_get(email_template_id=braze_id)
        elif resource_type == ResourceType.CONTENT_BLOCK:
            found = client.content_block_translations_get(content_block_id=braze_id)
        else:
            return None
    except BrazeError:
        return None
    return [
        TranslationLocale(t.name, t.language, t.country, dict(t.translation_map)) for t in found
    ]


def catalog_source() -> MirrorCatalogs:
    return MirrorCatalogs()


def preview_profile_list() -> QuerySet[PreviewProfile]:
    """The profiles of the workspace being worked in."""
    return PreviewProfile.objects.filter(workspace=workspace_active().key).order_by("name")


def preview_profile_get(*, pk: int) -> PreviewProfile | None:
    return preview_profile_list().filter(pk=pk).first()


def preview_profile_person(profile: PreviewProfile) -> Person:
    attributes = profile.attributes if isinstance(profile.attributes, dict) else {}
    return Person(profile.name, attributes, profile.language, profile.time_zone)


def connected_content_samples() -> dict[str, str]:
    """URL pattern -> the sample answer previews use for Connected Content calls."""
    settings = PreviewSettings.objects.filter(workspace=workspace_active().key).first()
    samples = settings.connected_content_samples if settings is not None else {}
    return {str(k): str(v) for k, v in samples.items()} if isinstance(samples, dict) else {}
