"""Reads for catalog fields and selections: what depends on them, and selection previews."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from catalogs import schema_rules
from catalogs.models import Catalog, CatalogItem, CatalogSelection
from console.workspaces import workspace_default_key
from templates_app.liquid import CatalogReferences, catalog_references
from templates_app.models import ContentVersion
from templates_app.models import ResourceType as ContentType

# Where each kind of content keeps its Liquid (the snapshot keys of templates_app/kinds.py).
LIQUID_KEYS: dict[str, tuple[str, ...]] = {
    ContentType.EMAIL_TEMPLATE: ("subject", "preheader", "body", "plaintext_body"),
    ContentType.CONTENT_BLOCK: ("content",),
}
PREVIEW_SCAN_LIMIT = 5000


@dataclass(frozen=True)
class ContentUse:
    kind: str  # "Email template", "Content Block"
    name: str
    braze_id: str


@dataclass(frozen=True)
class Dependents:
    selections: list[str] = field(default_factory=list)
    content: list[ContentUse] = field(default_factory=list)
    items_with_value: int | None = None

    @property
    def empty(self) -> bool:
        return not self.selections and not self.content and not self.items_with_value


def _latest_content() -> list[tuple[ContentVersion, CatalogReferences]]:
    """The newest version of every template and Content Block in the content history."""
    rows = (
        ContentVersion.objects.filter(
            workspace=workspace_default_key(), resource_type__in=list(LIQUID_KEYS)
        )
        .order_by("resource_type", "braze_id", "-version")
        .distinct("resource_type", "braze_id")
    )
    found = []
    for row in rows:
        text = "\n".join(str(row.snapshot.get(k) or "") for k in LIQUID_KEYS[row.resource_type])
        refs = catalog_references(text)
        if refs.catalogs:
            found.append((row, refs))
    return found


def _use(row: ContentVersion) -> ContentUse:
    return ContentUse(ContentType(row.resource_type).label, row.name, row.braze_id)


def catalog_content_uses(*, catalog: Catalog) -> list[ContentUse]:
    return [_use(row) for row, refs in _latest_content() if catalog.name in refs.catalogs]


def catalog_field_dependents(*, catalog: Catalog, field_name: str) -> Dependents:
    """Selections using the field, content whose Liquid reads it from this catalog's items,
    and how many mirrored items hold a value for it."""
    selections = sorted(
        s.name
        for s in CatalogSelection.objects.filter(catalog=catalog)
        if field_name in schema_rules.selection_fields(s.definition)
    )
    content = [
        _use(row)
        for row, refs in _latest_content()
        if catalog.name in refs.catalogs and field_name in refs.fields
    ]
    holding = (
        CatalogItem.objects.filter(catalog=catalog, data__has_key=field_name)
        .exclude(**{f"data__{field_name}": None})
        .count()
    )
    return Dependents(selections=selections, content=content, items_with_value=holding)


@dataclass(frozen=True)
class FieldUses:
    name: str
    type: str
    selections: list[str]
    content: list[ContentUse]


def catalog_schema_overview(*, catalog: Catalog) -> tuple[list[FieldUses], list[ContentUse]]:
    """For the catalog's page: each field with the selections and content reading it, and
    all content reading the catalog (the content history parsed once)."""
    selections = list(CatalogSelection.objects.filter(catalog=catalog))
    uses = [(row, refs) for row, refs in _latest_content() if catalog.name in refs.catalogs]
    fields = [
        FieldUses(
            name=str(f["name"]),
            type=str(f["type"]),
            selections=sorted(
                s.name
                for s in selections
                if f["name"] in schema_rules.selection_fields(s.definition)
            ),
            content=[_use(row) for row, refs in uses if f["name"] in refs.fields],
        )
        for f in catalog.fields
    ]
    return fields, [_use(row) for row, _refs in uses]


def catalog_selection_dependents(*, catalog: Catalog, selection_name: str) -> Dependents:
    content = [
        _use(row)
        for row, refs in _latest_content()
        if (catalog.name, selection_name) in refs.selections
    ]
    return Dependents(content=content)


def catalog_selections(*, catalog: Catalog) -> list[CatalogSelection]:
    return list(CatalogSelection.objects.filter(catalog=catalog))


def catalog_selection_get(*, catalog: Catalog, name: str) -> CatalogSelection:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(CatalogSelection, catalog=catalog, name=name)


def catalog_selection_preview(
    *, catalog: Catalog, definition: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """The mirrored items the selection would return, and whether the mirror was larger than
    the preview reads (then the preview is of the first PREVIEW_SCAN_LIMIT items)."""
    rows = list(
        CatalogItem.objects.filter(catalog=catalog)
        .order_by("item_id")
        .values_list("item_id", "data")[: PREVIEW_SCAN_LIMIT + 1]
    )
    items = [{"id": item_id, **data} for item_id, data in rows[:PREVIEW_SCAN_LIMIT]]
    chosen = schema_rules.selection_evaluate(items, definition, types=catalog.field_types())
    return [dict(i) for i in chosen], len(rows) > PREVIEW_SCAN_LIMIT
