"""Reads: search across the content history, and where a Content Block is used.

Both run on the indexes migration 0003 builds over `ContentVersion`: a weighted 'simple'
full-text vector (words), a trigram index over the same text (substrings and identifiers
such as `spring_sale`), and each version's parsed Content Block includes. The SQL is
written out because each condition must match its index's expression exactly.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils.safestring import SafeString, mark_safe

from console.workspaces import workspace_default_key, workspaces_all
from templates_app.models import ResourceType
from templates_app.personalize import block_includes

# What search reads of each kind, in the order a result shows its matches: (snapshot key,
# label). The first is the name. Migration 0003's search text covers the same keys.
SEARCH_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    ResourceType.EMAIL_TEMPLATE: (
        ("template_name", "Name"),
        ("subject", "Subject"),
        ("body", "Body"),
        ("plaintext_body", "Plain text"),
    ),
    ResourceType.CONTENT_BLOCK: (
        ("name", "Name"),
        ("description", "Description"),
        ("content", "Content"),
    ),
    ResourceType.PREFERENCE_CENTER: (
        ("name", "Name"),
        ("preference_center_title", "Title"),
        ("preference_center_page_html", "Page"),
        ("confirmation_page_html", "Confirmation page"),
    ),
}
# Where Liquid that Braze renders (and so may include a Content Block) lives.
INCLUDE_FIELDS: dict[str, tuple[str, ...]] = {
    ResourceType.EMAIL_TEMPLATE: ("subject", "preheader", "body", "plaintext_body"),
    ResourceType.CONTENT_BLOCK: ("content",),
}
PAGE_SIZE = 20
# Shorter than a trigram, a substring cannot use the trigram index; words still match.
SUBSTRING_MIN = 3
QUERY_MAX = 200
SNIPPET_BEFORE = 60
SNIPPET_AFTER = 140
SNIPPETS_MAX = 3


def version_includes(*, resource_type: str, snapshot: dict[str, Any]) -> list[str]:
    """The Content Blocks a version's Liquid includes, as its preview resolves them."""
    names: list[str] = []
    for field in INCLUDE_FIELDS.get(resource_type, ()):
        for name in block_includes(str(snapshot.get(field) or "")):
            if name not in names:
                names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class Snippet:
    label: str
    html: SafeString  # the field's text escaped, with only <mark> added around matches


@dataclass(frozen=True, slots=True)
class Hit:
    resource_type: str
    braze_id: str
    version: int
    name: str
    current: bool  # False: an earlier version, found because history was searched
    seen_at: datetime
    snippets: tuple[Snippet, ...]

    @property
    def kind_label(self) -> str:
        return str(ResourceType(self.resource_type).label)


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[Hit]
    total: int
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _terms(query: str) -> list[str]:
    """What a result highlights: the whole query, then its words (letters and digits, as
    PostgreSQL's parser splits them), longest first. Excluded words (`-word`) are not."""
    words = [
        w
        for w in re.findall(r"(?<![\w-])-?[^\W_]+", query.replace('"', " "))
        if not w.startswith("-") and w.lower() != "or"
    ]
    phrase = query.strip().strip('"').strip()
    return sorted({t.lower() for t in [phrase, *words] if t}, key=len, reverse=True)


def _highlight(text: str, pattern: re.Pattern[str]) -> SafeString | None:
    """A window of `text` around its first match, escaped, matches marked; None if none."""
    first = pattern.search(text)
    if first is None:
        return None
    start = max(first.start() - SNIPPET_BEFORE, 0)
    end = min(first.end() + SNIPPET_AFTER, len(text))
    window = text[start:end]
    pieces = ["…" if start else ""]
    pos = 0
    for match in pattern.finditer(window):
        pieces += [html.escape(window[pos : match.start()]), "<mark>"]
        pieces += [html.escape(match.group()), "</mark>"]
        pos = match.end()
    pieces += [html.escape(window[pos:]), "…" if end < len(text) else ""]
    # Each piece of content is escaped above; <mark> is the only markup added.
    return mark_safe(re.sub(r"\s+", " ", "".join(pieces)))  # noqa: S308


def _snippets(resource_type: str, snapshot: dict[str, Any], terms: list[str]) -> list[Snippet]:
    if not terms:
        return []
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    found = []
    for field, label in SEARCH_FIELDS.get(resource_type, ()):
        marked = _highlight(str(snapshot.get(field) or ""), pattern)
        if marked is not None:
            found.append(Snippet(label, marked))
        if len(found) == SNIPPETS_MAX:
            break
    return found


_LATEST = """NOT EXISTS (
    SELECT 1 FROM templates_app_contentversion later
    WHERE later.workspace = v.workspace AND later.resource_type = v.resource_type
    AND later.braze_id = v.braze_id AND later.version > v.version)"""


def search_sql(
    *, include_history: bool, substring: bool, some_kinds: bool, one_workspace: bool = False
) -> str:
    """The search query, over migration 0003's indexed columns (`search_text` is lowercase).

    `one_workspace` keeps the versions of `%(workspace)s` only: asked for when several
    workspaces are configured (with one, every version is its). The text indexes do not
    include the workspace yet, so the planner may then pick the workspace's index instead."""
    matches = "v.search_vector @@ q.tsq"
    if substring:
        matches = f"({matches} OR v.search_text LIKE %(like)s)"
    return f"""
        WITH q AS (SELECT websearch_to_tsquery('simple', %(query)s) AS tsq)
        SELECT v.id, v.resource_type, v.braze_id, v.version, v.name, v.seen_at,
               {_LATEST} AS current,
               count(*) OVER () AS total
        FROM templates_app_contentversion v CROSS JOIN q
        WHERE {matches}
          {"AND v.workspace = %(workspace)s" if one_workspace else ""}
          {"AND v.resource_type = ANY(%(types)s)" if some_kinds else ""}
          {"" if include_history else "AND " + _LATEST}
        ORDER BY (lower(v.name) LIKE %(like)s) DESC, ts_rank_cd(v.search_title, q.tsq) DESC,
                 v.seen_at DESC, v.id DESC
        LIMIT %(limit)s OFFSET %(offset)s
    """  # noqa: S608 (only fixed fragments are joined; every value is a parameter)


def content_search(
    *,
    query: str,
    kinds: list[str] | None = None,
    include_history: bool = False,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    workspace: str | None = None,
) -> SearchPage:
    """Email templates, Content Blocks and preference centers whose text matches `query`, in
    `workspace`'s content history (a key; default: the default workspace's).

    A version matches when its words match (`websearch_to_tsquery`: words, "phrases",
    `-excluded`, `or`) or, from three characters on, when it contains `query` as written,
    in any case. The best first: a name match, then the rank of the name and short fields
    (subject, description, title), then the most recently seen; the current versions only
    unless `include_history`.
    """
    query = query.strip()[:QUERY_MAX]
    page = max(page, 1)
    if not query:
        return SearchPage([], 0, page, page_size)
    types = [k for k in kinds or () if k in SEARCH_FIELDS]
    sql = search_sql(
        include_history=include_history,
        substring=len(query) >= SUBSTRING_MIN,
        some_kinds=bool(types),
        one_workspace=len(workspaces_all()) > 1,
    )
    params: dict[str, str | int | list[str]] = {
        "query": query,
        "workspace": workspace if workspace is not None else workspace_default_key(),
        "like": _like(query.lower()),
        "types": types,
        "limit": page_size,
        "offset": (page - 1) * page_size,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner costs a row by its heap tuple, not by the text kept in TOAST that a
        # scan must read and match, so it would scan every version rather than the indexes.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        # Inside a caller's transaction the setting would outlive this block.
        cursor.execute("RESET enable_seqscan")
        snapshots: dict[int, dict[str, Any]] = {}
        if rows:
            # Only the page's snapshots are read: they are the large part of each row.
            cursor.execute(
                "SELECT id, snapshot FROM templates_app_contentversion WHERE id = ANY(%s)",
                [[row[0] for row in rows]],
            )
            snapshots = {pk: _as_dict(snapshot) for pk, snapshot in cursor.fetchall()}
    terms = _terms(query)
    hits = [
        Hit(
            resource_type=resource_type,
            braze_id=braze_id,
            version=version,
            name=name,
            current=current,
            seen_at=seen_at,
            snippets=tuple(_snippets(resource_type, snapshots.get(pk, {}), terms)),
        )
        for pk, resource_type, braze_id, version, name, seen_at, current, _ in rows
    ]
    return SearchPage(hits, rows[0][-1] if rows else 0, page, page_size)


def _as_dict(snapshot: Any) -> dict[str, Any]:
    if isinstance(snapshot, str):  # a cursor without psycopg's jsonb loader returns text
        snapshot = json.loads(snapshot)
    return snapshot if isinstance(snapshot, dict) else {}


@dataclass(frozen=True, slots=True)
class Usage:
    resource_type: str
    braze_id: str
    version: int
    name: str
    current: bool

    @property
    def kind_label(self) -> str:
        return str(ResourceType(self.resource_type).label)


def content_block_usage(
    *, name: str, include_history: bool = False, workspace: str | None = None
) -> list[Usage]:
    """Email templates and Content Blocks whose Liquid includes the block `name`
    (`{{content_blocks.${name}}}`), by kind and name; their current versions only unless
    `include_history`, which adds the earlier versions that included it. In `workspace` (a
    key; default: the default workspace)."""
    sql = f"""
        SELECT v.resource_type, v.braze_id, v.version, v.name, {_LATEST} AS current
        FROM templates_app_contentversion v
        WHERE v.includes @> %(name)s::jsonb AND v.workspace = %(workspace)s
          {"" if include_history else "AND " + _LATEST}
        ORDER BY v.resource_type DESC, lower(v.name), v.braze_id, v.version DESC
    """  # noqa: S608 (only fixed fragments are joined; the name is a parameter)
    with connection.cursor() as cursor:
        chosen = workspace if workspace is not None else workspace_default_key()
        cursor.execute(sql, {"name": json.dumps([name]), "workspace": chosen})
        return [Usage(*row) for row in cursor.fetchall()]
