"""Writes of the catalog mirror: syncing from Braze, updating after applied changes, and
proposing changes (the only way a catalog write reaches Braze)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalogs import freshness, rules
from catalogs.models import ACTIVE_SYNC_STATES, Catalog, CatalogItem, CatalogSync, SyncState
from catalogs.selectors import sort_expression
from console.audit import events
from console.audit.services import Actor, SystemActor, audit_append
from console.braze.client import BrazeClient, CatalogItemsPage
from console.braze.errors import (
    BrazeError,
    BrazeNotFound,
    BrazeRateLimited,
    BrazeServerError,
    BrazeTimeout,
    BrazeUnavailable,
    describe_error,
)
from console.celery import task_enqueue
from console.changes.models import ChangeRequest
from console.changes.resource_types import Identifiers
from console.changes.services import change_request_propose
from console.workspaces import workspace_active, workspace_default_key

logger = logging.getLogger(__name__)

# Who the audit trail names for what a sync finds: nobody in the console did it.
SYNC_ACTOR = SystemActor("catalog-sync")
ITEM_RESOURCE = "catalog_item"
CATALOG_RESOURCE = "catalog"
ITEM_IDENTIFIERS = Identifiers("{catalog}/{item}")
CATALOG_IDENTIFIERS = Identifiers("{catalog}")
# Advisory-lock class for "a worker is walking this catalog" (the second key is its id).
_SYNC_LOCK_CLASS = 0x43415453  # "CATS"
TRANSIENT_ERRORS = (BrazeRateLimited, BrazeUnavailable, BrazeTimeout, BrazeServerError)


# --- the mirror's rows -------------------------------------------------------------------


def _search_text(item_id: str, data: Mapping[str, Any], types: Mapping[str, str]) -> str:
    parts = [item_id]
    parts += [v for k, v in data.items() if types.get(k) == "string" and isinstance(v, str)]
    return " ".join(parts).lower()


def _item_state(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "id"}


def _braze_time(value: str) -> datetime | None:
    if not value:
        return None
    return parse_datetime(value)


def catalog_mirror_upsert(*, braze_catalog: Any, workspace: str | None = None) -> Catalog:
    """Store one catalog as Braze lists it (name, description, fields, count, updated), in
    ``workspace``'s mirror (a key; default: the default workspace's)."""
    fields = [{"name": f.name, "type": f.type} for f in braze_catalog.fields]
    catalog, _ = Catalog.objects.update_or_create(
        workspace=workspace if workspace is not None else workspace_default_key(),
        name=braze_catalog.name,
        defaults={
            "description": braze_catalog.description or "",
            "fields": fields,
            "braze_item_count": braze_catalog.num_items,
            "braze_updated_at": _braze_time(braze_catalog.updated_at),
            "present_in_braze": True,
        },
    )
    return catalog


def catalog_mirror_refresh(*, client: BrazeClient, workspace: str | None = None) -> list[Catalog]:
    """List catalogs in Braze (one request of the 5/min catalog group) into ``workspace``'s
    mirror (a key; default: the default workspace's, which ``client`` must be talking to)."""
    workspace = workspace if workspace is not None else workspace_default_key()
    listed = client.catalog_list()
    with transaction.atomic():
        catalogs = [catalog_mirror_upsert(braze_catalog=c, workspace=workspace) for c in listed]
        Catalog.objects.filter(workspace=workspace).exclude(
            name__in=[c.name for c in listed]
        ).update(present_in_braze=False)
    return catalogs


_INDEX_LOCK_CLASS = 7_310_002  # advisory-lock namespace for sort-index builds
# Every sort index's name starts so (the pre-partial, shared ones did too, so pruning drops them).
_SORT_INDEX_PREFIX = "catalog_item_sort_"


def sort_index_name(*, catalog_pk: int, field: str) -> str:
    """The name of one catalog's index on one field (63 bytes at most, whatever the field)."""
    digest = hashlib.sha256(field.encode()).hexdigest()[:16]
    return f"{_SORT_INDEX_PREFIX}{int(catalog_pk)}_{digest}"


def catalog_sort_indexes_wanted(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, tuple[int, str]]:
    """Every sort index the mirror should have: name -> (catalog pk, field)."""
    wanted: dict[str, tuple[int, str]] = {}
    for catalog in Catalog.objects.using(using).order_by("pk"):
        for spec in catalog.value_fields():
            field = str(spec["name"])
            if sort_expression(field) is not None:
                wanted[sort_index_name(catalog_pk=catalog.pk, field=field)] = (catalog.pk, field)
    return wanted


def catalog_sort_indexes_ensure_all(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Sort indexes for every mirrored catalog's fields (the owner's periodic command), and
    none for a field or catalog the mirror no longer holds (their indexes are dropped)."""
    built: list[str] = []
    for catalog in Catalog.objects.using(using).order_by("pk"):
        built += catalog_sort_indexes_ensure(catalog=catalog, using=using)
    catalog_sort_indexes_prune(using=using)
    catalog_sort_statistics_ensure(using=using)
    return built


_STATISTICS_PREFIX = "catalog_item_stat_"
_STATISTICS_TARGET = 1000


def _statistics_name(field: str) -> str:
    return _STATISTICS_PREFIX + hashlib.sha256(field.encode()).hexdigest()[:24]


def catalog_sort_statistics_ensure(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Statistics on each field name's sort expression, over every catalog's items.

    The planner takes no statistics from a partial index, so without these it would guess
    how many items a range or a value matches, and could sort a million matches to show
    fifty. A histogram per field name, not per catalog: its size is fixed, whatever the
    mirror's. Those of names no catalog holds any more are dropped. Owner's login.
    """
    conn = connections[using]
    if conn.in_atomic_block:
        return []
    wanted = {
        _statistics_name(field): expression
        for _, field in catalog_sort_indexes_wanted(using=using).values()
        if (expression := sort_expression(field)) is not None
    }
    created = []
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [_INDEX_LOCK_CLASS])
        if not cursor.fetchone()[0]:
            return []
        try:
            cursor.execute(
                "SELECT stxname, stxstattarget FROM pg_statistic_ext "
                "WHERE stxrelid = 'catalogs_catalogitem'::regclass"
                " AND stxname LIKE 'catalog\\_item\\_stat\\_%%'"
            )
            present = dict(cursor.fetchall())
            for name in sorted(present.keys() - wanted.keys()):
                # The name is ours (a fixed prefix and hex digits), never user text.
                cursor.execute(f"DROP STATISTICS IF EXISTS {name}")
            for name in sorted(wanted.keys() - present.keys()):
                cursor.execute(
                    f"CREATE STATISTICS IF NOT EXISTS {name} ON ({wanted[name]}) "
                    "FROM catalogs_catalogitem"
                )
                created.append(name)
            for name in sorted(wanted):
                if present.get(name) != _STATISTICS_TARGET:
                    # jsonb has no distance between values: the planner takes half a
                    # histogram bucket for a range inside one, so narrow ranges need many.
                    cursor.execute(f"ALTER STATISTICS {name} SET STATISTICS {_STATISTICS_TARGET}")
                    if name not in created:
                        created.append(name)
            if created:
                # New statistics are empty until the table is analysed (a sample of rows).
                cursor.execute("ANALYZE catalogs_catalogitem")
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [_INDEX_LOCK_CLASS])
    return created


def catalog_sort_indexes_prune(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Drop the sort indexes of deleted fields and deleted catalogs. Owner's login, like the
    builds."""
    conn = connections[using]
    if conn.in_atomic_block:
        return []
    wanted = catalog_sort_indexes_wanted(using=using)
    dropped = []
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [_INDEX_LOCK_CLASS])
        if not cursor.fetchone()[0]:
            return []
        try:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'catalogs_catalogitem'"
                " AND indexname LIKE 'catalog\\_item\\_sort\\_%%'"
            )
            for (name,) in cursor.fetchall():
                if name not in wanted:
                    # The name is ours (a fixed prefix, digits and hex), never user text.
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                    dropped.append(name)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [_INDEX_LOCK_CLASS])
    return dropped


def catalog_sort_indexes_ensure(*, catalog: Catalog, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """One partial expression index per field of this catalog, so its sorts, ranges and
    keyset pages stay index scans over its own items.

    Partial (``WHERE catalog_id = pk``) so that the indexes hold each item once per field of
    its own catalog: their size follows the mirror's data, not items times every field name any
    catalog uses, and a catalog's or a field's index goes with it
    (``catalog_sort_indexes_prune``). Field names are part of the SQL: only names Braze
    allows ([A-Za-z0-9_-]) get an index. Needs the schema owner's login, as the run-time
    role owns no table: run by `manage.py catalog_sort_indexes` (the owner database alias),
    never by the web or a worker, which are not given that login.
    """
    conn = connections[using]
    if conn.in_atomic_block:
        # CONCURRENTLY needs its own transaction; callers run this from a worker.
        logger.warning("sort indexes for %s not created inside a transaction", catalog.name)
        return []
    created = []
    with conn.cursor() as cursor:
        # Two concurrent CREATE INDEX CONCURRENTLY on one table can deadlock each other:
        # one worker builds the indexes, the others leave it to that one.
        cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [_INDEX_LOCK_CLASS])
        if not cursor.fetchone()[0]:
            return []
        try:
            for field in catalog.value_fields():
                expression = sort_expression(str(field["name"]))
                if expression is None:
                    continue
                name = sort_index_name(catalog_pk=catalog.pk, field=str(field["name"]))
                # A build that was interrupted leaves an invalid index that IF NOT EXISTS
                # would keep forever: drop it and build again.
                cursor.execute(
                    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = %s",
                    [name],
                )
                row = cursor.fetchone()
                if row is not None and not row[0]:
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                # The catalog's pk is an integer from the database, never request text.
                cursor.execute(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON catalogs_catalogitem "
                    f"(({expression}), item_id) WHERE catalog_id = {int(catalog.pk)}"
                )
                created.append(name)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [_INDEX_LOCK_CLASS])
    return created


def _audit_item(
    *, actor: Actor, catalog: Catalog, item_id: str, action: str, data: dict[str, Any]
) -> None:
    audit_append(
        actor=actor,
        action=action,
        resource_type=ITEM_RESOURCE,
        resource_id=f"{catalog.name}/{item_id}",
        data={"catalog": catalog.name, "item_id": item_id, **data},
    )


def _field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], types: Mapping[str, str]
) -> dict[str, Any]:
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if key not in before
        or key not in after
        or not rules.same_value(types.get(key), before[key], after[key])
    }


@dataclass(frozen=True)
class PageOutcome:
    added: int
    changed: int


def catalog_items_mirror_page(
    *,
    catalog: Catalog,
    items: Sequence[Mapping[str, Any]],
    sync_id: int | None,
    fetched_at: datetime,
    record_external: bool,
) -> PageOutcome:
    """Upsert one page of Braze items; call inside the transaction that checkpoints it.

    Items the console wrote after the page was fetched are left alone (the page is older
    than the console's own write). With ``record_external`` every added or changed item
    is an external change in the audit trail.
    """
    types = catalog.field_types()
    ids = [str(raw["id"]) for raw in items]
    existing = {
        row.item_id: row
        for row in CatalogItem.objects.filter(catalog=catalog, item_id__in=ids).only(
            "item_id", "data", "mirrored_at"
        )
    }
    now = timezone.now()
    rows, added, changed = [], 0, 0
    for raw in items:
        # Braze writes times as "…Z", the console as "…+00:00": the mirror keeps one form,
        # so its text sort holds and a time is not an external change for its spelling.
        item_id, data = str(raw["id"]), rules.canonical_item(types, _item_state(raw))
        old = existing.get(item_id)
        if old is not None and old.mirrored_at > fetched_at:
            data = old.data  # the console's newer write wins over this older page
        elif old is None:
            added += 1
            if record_external:
                _audit_item(
                    actor=SYNC_ACTOR,
                    catalog=catalog,
                    item_id=item_id,
                    action=events.CATALOG_ITEM_EXTERNAL_ADDED,
                    data={"values": data},
                )
        elif not rules.same_item(types, old.data, data):
            changed += 1
            if record_external:
                _audit_item(
                    actor=SYNC_ACTOR,
                    catalog=catalog,
                    item_id=item_id,
                    action=events.CATALOG_ITEM_EXTERNAL_CHANGED,
                    data={"fields": _field_changes(old.data, data, types)},
                )
        rows.append(
            CatalogItem(
                catalog=catalog,
                item_id=item_id,
                data=data,
                search_text=_search_text(item_id, data, types),
                seen_sync_id=sync_id,
                mirrored_at=now
                if old is None or old.mirrored_at <= fetched_at
                else old.mirrored_at,
            )
        )
    CatalogItem.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["catalog", "item_id"],
        update_fields=["data", "search_text", "seen_sync_id", "mirrored_at"],
    )
    return PageOutcome(added=added, changed=changed)


def catalog_item_mirror_write(
    *, catalog: Catalog, item_id: str, action: str, values: Mapping[str, Any] | None
) -> None:
    """The console's own applied change, in the mirror at once (called by the applier)."""
    with transaction.atomic():
        if action == "delete":
            CatalogItem.objects.filter(catalog=catalog, item_id=item_id).delete()
        else:
            types = catalog.field_types()
            row = CatalogItem.objects.filter(catalog=catalog, item_id=item_id).first()
            data = dict(row.data) if row is not None and action == "update" else {}
            data = rules.canonical_item(types, rules.merge_values(data, values or {}))
            CatalogItem.objects.update_or_create(
                catalog=catalog,
                item_id=item_id,
                defaults={
                    "data": data,
                    "search_text": _search_text(item_id, data, types),
                    "mirrored_at": timezone.now(),
                },
            )
        Catalog.objects.filter(pk=catalog.pk).update(
            mirror_item_count=CatalogItem.objects.filter(catalog=catalog).count()
        )


# What CatalogItem.objects.bulk_create(update_conflicts=True) would write, as one statement.
# The items come as one JSON text: PostgreSQL reads it in C, where psycopg would quote three
# arrays' elements one at a time in Python (the larger part of a bulk sender's recording).
_MIRROR_STORE_SQL = """
INSERT INTO {table} (catalog_id, item_id, data, search_text, mirrored_at)
SELECT %(catalog)s, item.id, item.data, item.search, %(now)s
FROM json_to_recordset(%(items)s::json) AS item(id text, data jsonb, search text)
ON CONFLICT (catalog_id, item_id) DO UPDATE
SET data = EXCLUDED.data, search_text = EXCLUDED.search_text, mirrored_at = EXCLUDED.mirrored_at
"""


def catalog_items_mirror_store(
    *, catalog: Catalog, items: Mapping[str, Mapping[str, Any]], deleted: Sequence[str] = ()
) -> None:
    """Items the console had Braze write or delete, in the mirror at once (for many at a
    time, as bulk jobs send them); `items` maps an id to its whole data, without the id."""
    if deleted:
        CatalogItem.objects.filter(catalog=catalog, item_id__in=deleted).delete()
    if not items:
        return
    types = catalog.field_types()
    # One statement: a bulk job writes the items of each accepted request, and building a
    # model instance per item cost the workers more than sending it to Braze.
    rows = [
        {"id": item_id, "data": data, "search": _search_text(item_id, data, types)}
        for item_id, data in items.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _MIRROR_STORE_SQL.format(table=CatalogItem._meta.db_table),
            {
                "catalog": catalog.pk,
                "now": timezone.now(),
                "items": json.dumps(rows, separators=(",", ":")),
            },
        )


def catalog_mirror_count_refresh(*, catalog_id: int) -> None:
    """Count the catalog's mirrored items again, after many changed at once."""
    Catalog.objects.filter(pk=catalog_id).update(
        mirror_item_count=CatalogItem.objects.filter(catalog_id=catalog_id).count()
    )


# At most one list refresh per workspace waits in the queue, however often people click: the
# marker is set when one is queued and cleared when a worker starts it (it expires if the task
# is lost).
_LIST_REFRESH_PENDING = "catalogs:list-refresh-pending:{workspace}"


def _list_refresh_pending_key() -> str:
    return _LIST_REFRESH_PENDING.format(workspace=workspace_active().key)


def catalog_list_refresh_request(*, actor: AbstractBaseUser) -> bool:
    """Ask a worker to list the workspace's catalogs in Braze (never from the web request
    itself).

    False when a refresh is already queued: nothing more is queued or audited."""
    pending_for = settings.CATALOG_LIST_REFRESH_PENDING_SECONDS
    if not cache.add(_list_refresh_pending_key(), timezone.now().isoformat(), pending_for):
        return False
    audit_append(
        actor=actor, action=events.CATALOG_LIST_REFRESH_REQUESTED, resource_type=CATALOG_RESOURCE
    )
    workspace = workspace_active().key
    transaction.on_commit(
        lambda: task_enqueue("catalogs.tasks.catalog_list_refresh_task", workspace)
    )
    return True


def catalog_list_refresh_run(*, client: BrazeClient) -> float | None:
    """A queued list refresh, run by a worker: None when done, or the seconds to wait before
    trying again when Braze's catalog group is spent (the worker is not held meanwhile, and
    clicks in that time queue nothing more)."""
    pending = _list_refresh_pending_key()
    cache.delete(pending)
    try:
        catalog_mirror_refresh(client=client)
    except BrazeRateLimited as exc:
        wait = exc.retry_after
        cache.set(pending, "retrying", wait + settings.CATALOG_LIST_REFRESH_PENDING_SECONDS)
        return wait
    return None


# --- the sync ------------------------------------------------------------------------------


def catalog_sync_request(
    *, catalog: Catalog, actor: AbstractBaseUser | None, trigger: str = "manual"
) -> CatalogSync:
    """Queue a full pass, or return the pass already under way (one per catalog)."""
    with transaction.atomic():
        Catalog.objects.select_for_update().get(pk=catalog.pk)
        sync = CatalogSync.objects.filter(catalog=catalog, state__in=ACTIVE_SYNC_STATES).first()
        if sync is not None:
            return sync
        sync = CatalogSync.objects.create(
            catalog=catalog,
            trigger=trigger,
            requested_by=actor,  # type: ignore[misc]  # the project user model
            items_expected=catalog.braze_item_count,
        )
        audit_append(
            actor=actor or SYNC_ACTOR,
            action=events.CATALOG_SYNC_REQUESTED,
            resource_type=CATALOG_RESOURCE,
            resource_id=catalog.name,
            data={"sync_id": sync.pk, "trigger": trigger},
        )
        sync_id, workspace = sync.pk, catalog.workspace
        transaction.on_commit(lambda: catalog_sync_enqueue(sync_id=sync_id, workspace=workspace))
    return sync


def catalog_sync_enqueue(*, sync_id: int, workspace: str, countdown: float = 0) -> None:
    """Queue a pass's next turn in its catalog's workspace (``workspace``, a key)."""
    task_enqueue("catalogs.tasks.catalog_sync_task", sync_id, workspace, countdown=countdown)


def _in_other_workspace(catalog: Catalog) -> bool:
    """A pass queued for another workspace than its catalog's (a message from before tasks
    named theirs): walking it would read a same-named catalog with the wrong key."""
    if catalog.workspace == workspace_active().key:
        return False
    logger.warning(
        "catalog sync of %s (workspace %s) refused in workspace %s",
        catalog.name,
        catalog.workspace,
        workspace_active().key,
    )
    return True


def _try_lock(catalog_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_SYNC_LOCK_CLASS, catalog_id])
        return bool(cursor.fetchone()[0])


def _unlock(catalog_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_SYNC_LOCK_CLASS, catalog_id])


@dataclass(frozen=True)
class SyncRun:
    sync: CatalogSync
    retry_in: float | None = None  # seconds until the run should be picked up again


def _finish_pass(sync: CatalogSync, catalog: Catalog, record_external: bool) -> None:
    """Remove what Braze no longer has: items this pass did not see and nobody wrote since."""
    assert sync.started_at is not None
    gone = CatalogItem.objects.filter(catalog=catalog, mirrored_at__lt=sync.started_at).exclude(
        seen_sync_id=sync.pk
    )
    removed = 0
    for item_id, data in gone.values_list("item_id", "data").iterator(chunk_size=2000):
        removed += 1
        if record_external:
            _audit_item(
                actor=SYNC_ACTOR,
                catalog=catalog,
                item_id=item_id,
                action=events.CATALOG_ITEM_EXTERNAL_REMOVED,
                data={"values": data},
            )
    gone.delete()
    now = timezone.now()
    count = CatalogItem.objects.filter(catalog=catalog).count()
    Catalog.objects.filter(pk=catalog.pk).update(last_full_sync_at=now, mirror_item_count=count)
    sync.items_removed += removed
    sync.state, sync.finished_at, sync.cursor = SyncState.SUCCEEDED, now, ""
    sync.error_message = _skipped_note(sync.items_skipped)
    sync.save()
    audit_append(
        actor=SYNC_ACTOR,
        action=events.CATALOG_SYNCED,
        resource_type=CATALOG_RESOURCE,
        resource_id=catalog.name,
        data={
            "sync_id": sync.pk,
            "pages": sync.pages_done,
            "items": sync.items_done,
            "added": sync.items_added,
            "changed": sync.items_changed,
            "removed": sync.items_removed,
            "skipped": sync.items_skipped,
        },
    )


def _skipped_note(skipped: int) -> str:
    if not skipped:
        return ""
    if skipped == 1:
        return "Braze listed 1 entry without an item ID; it is not in the mirror."
    return f"Braze listed {skipped} entries without an item ID; they are not in the mirror."


def catalog_sync_run(*, sync_id: int, client: BrazeClient, max_pages: int | None = None) -> SyncRun:
    """Walk the catalog's items from the checkpoint, one committed page at a time.

    Idempotent and resumable: each page's upsert and the next cursor commit together, so a
    run killed at any point starts again from the last committed page. A Braze limit or a
    passing outage leaves the pass waiting with its checkpoint (``retry_in``).
    """
    sync = CatalogSync.objects.select_related("catalog").get(pk=sync_id)
    if not sync.is_active:
        return SyncRun(sync)
    catalog = sync.catalog
    if _in_other_workspace(catalog):
        return SyncRun(sync)  # the schedule resumes it in its own workspace once stalled
    if not _try_lock(catalog.pk):
        return SyncRun(sync)  # another worker is walking this catalog
    try:
        return _walk(sync, catalog, client, max_pages)
    finally:
        _unlock(catalog.pk)


def _walk(
    sync: CatalogSync, catalog: Catalog, client: BrazeClient, max_pages: int | None
) -> SyncRun:
    if sync.started_at is None:
        sync.started_at = timezone.now()
    sync.state, sync.heartbeat_at = SyncState.RUNNING, timezone.now()
    sync.save(update_fields=["state", "started_at", "heartbeat_at"])
    record_external = catalog.last_full_sync_at is not None

    def fetch(cursor: str | None) -> tuple[datetime, CatalogItemsPage]:
        fetched_at = timezone.now()
        return fetched_at, client.catalog_item_page(catalog_name=catalog.name, cursor=cursor)

    # The next page is fetched while this one is written, so the database never holds up
    # the 50/min request budget. A page is applied only after the one before it committed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-sync") as pool:
        pending = pool.submit(fetch, sync.cursor or None)
        pages = 0
        while True:
            try:
                fetched_at, page = pending.result()
            except TRANSIENT_ERRORS as exc:
                retry_at = getattr(exc, "retry_at", None)
                wait = max(1.0, retry_at - timezone.now().timestamp()) if retry_at else 30.0
                sync.state, sync.error_message = SyncState.WAITING, describe_error(exc)
                sync.save(update_fields=["state", "error_message"])
                return SyncRun(sync, retry_in=wait)
            except BrazeError as exc:
                sync.state, sync.finished_at = SyncState.FAILED, timezone.now()
                sync.error_message = describe_error(exc)
                sync.save(update_fields=["state", "finished_at", "error_message"])
                if isinstance(exc, BrazeNotFound):
                    Catalog.objects.filter(pk=catalog.pk).update(present_in_braze=False)
                return SyncRun(sync)
            pages += 1
            more = bool(page.next_cursor) and (max_pages is None or pages < max_pages)
            if more:
                pending = pool.submit(fetch, page.next_cursor)
            with transaction.atomic():
                outcome = catalog_items_mirror_page(
                    catalog=catalog,
                    items=page.items,
                    sync_id=sync.pk,
                    fetched_at=fetched_at,
                    record_external=record_external,
                )
                sync.pages_done += 1
                sync.items_done += len(page.items)
                sync.items_added += outcome.added
                sync.items_changed += outcome.changed
                if page.skipped:
                    # Not an error of the pass: the rest of the page is still mirrored.
                    logger.warning(
                        "catalog %s sync %s: page %s has entries without an id at %s",
                        catalog.name,
                        sync.pk,
                        sync.pages_done,
                        list(page.skipped),
                    )
                    sync.items_skipped += len(page.skipped)
                sync.cursor = page.next_cursor or ""
                sync.heartbeat_at = timezone.now()
                sync.error_message = _skipped_note(sync.items_skipped)
                if not page.next_cursor:
                    _finish_pass(sync, catalog, record_external)
                    return SyncRun(sync)
                sync.save()
            if not more:
                return SyncRun(sync, retry_in=0)


def catalog_sync_step(
    *, sync_id: int, client: BrazeClient, max_pages: int | None = None
) -> SyncRun:
    """One worker's turn on a pass; a new pass first takes Braze's current schema."""
    sync = CatalogSync.objects.select_related("catalog").get(pk=sync_id)
    if _in_other_workspace(sync.catalog):
        return SyncRun(sync)
    if sync.pages_done == 0 and not sync.cursor and sync.is_active:
        # When the 5/min catalog group is busy, the mirrored schema will do.
        with contextlib.suppress(BrazeError):
            catalog_mirror_refresh(client=client)
        sync.catalog.refresh_from_db()
        CatalogSync.objects.filter(pk=sync.pk).update(items_expected=sync.catalog.braze_item_count)
    return catalog_sync_run(sync_id=sync_id, client=client, max_pages=max_pages)


def catalog_sync_schedule(*, client: BrazeClient) -> list[CatalogSync]:
    """The periodic job of the workspace being worked in (``client`` talks to it): refresh
    its catalog list, resume its stalled passes, start its due ones (each catalog at its own
    interval, from this workspace's limits: catalogs/freshness.py)."""
    workspace = workspace_active().key
    try:
        catalog_mirror_refresh(client=client)
    except BrazeError as exc:
        logger.warning("catalog list refresh skipped: %s", describe_error(exc))
    stale = timezone.now() - timedelta(minutes=settings.CATALOG_SYNC_STALL_MINUTES)
    budget = freshness.read_budget()
    started = []
    for catalog in Catalog.objects.filter(workspace=workspace, present_in_braze=True):
        active = CatalogSync.objects.filter(catalog=catalog, state__in=ACTIVE_SYNC_STATES).first()
        if active is not None:
            # A killed worker leaves its pass "running" with a checkpoint: pick it up.
            if active.heartbeat_at is None or active.heartbeat_at < stale:
                catalog_sync_enqueue(sync_id=active.pk, workspace=workspace)
            continue
        # Never sooner than the pass takes: a large catalog's pass would otherwise never end.
        due = timezone.now() - freshness.sync_interval(catalog=catalog, budget=budget)
        if catalog.last_full_sync_at is None or catalog.last_full_sync_at < due:
            started.append(catalog_sync_request(catalog=catalog, actor=None, trigger="schedule"))
    return started


# --- proposals -----------------------------------------------------------------------------


def item_identifier(catalog: Catalog, item_id: str) -> str:
    return ITEM_IDENTIFIERS.build(catalog=catalog.name, item=item_id)


def catalog_item_propose(
    *,
    actor: AbstractBaseUser,
    catalog: Catalog,
    action: str,
    item_id: str,
    values: Mapping[str, Any],
) -> ChangeRequest:
    """Propose creating, editing (only the changed fields) or deleting one item.

    An edited array field the mirror holds is sent as ``$add``/``$remove`` where those say
    the change exactly, so values someone adds in Braze meanwhile stay.

    The base snapshot is the mirror's copy the user saw: if Braze holds anything else when
    the change is applied, the change stops as a conflict instead of overwriting it.
    """
    row = CatalogItem.objects.filter(catalog=catalog, item_id=item_id).first()
    base = dict(row.data) if row is not None else None
    types = catalog.field_types()
    if action == "update":
        held = base or {}
        payload = {
            k: rules.array_ops_for(held.get(k), v)
            if types.get(k) == "array" and isinstance(v, list) and held.get(k) is not None
            else v
            for k, v in values.items()
            if not rules.same_value(types.get(k), held.get(k), v)
        }
    elif action == "create":
        payload = {k: v for k, v in values.items() if v is not None}
    else:
        payload = {}
    verb = {"create": "Create", "update": "Edit", "delete": "Delete"}[action]
    return change_request_propose(
        actor=actor,
        resource_type=ITEM_RESOURCE,
        identifier=item_identifier(catalog, item_id),
        action=action,
        payload=payload,
        base_snapshot=base,
        title=f"{verb} item {item_id} in {catalog.name}",
    )


def catalog_propose_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    description: str,
    fields: Sequence[tuple[str, str]],
) -> ChangeRequest:
    payload = {
        "name": name,
        "description": description,
        "fields": [{"name": n, "type": t} for n, t in fields],
    }
    return change_request_propose(
        actor=actor,
        resource_type=CATALOG_RESOURCE,
        identifier=name,
        action="create",
        payload=payload,
        base_snapshot=None,
        title=f"Create catalog {name}",
    )


def catalog_propose_delete(*, actor: AbstractBaseUser, catalog: Catalog) -> ChangeRequest:
    base = {"name": catalog.name, "description": catalog.description, "fields": catalog.fields}
    return change_request_propose(
        actor=actor,
        resource_type=CATALOG_RESOURCE,
        identifier=catalog.name,
        action="delete",
        payload={},
        base_snapshot=base,
        title=f"Delete catalog {catalog.name}",
    )


def catalog_mirror_write(*, name: str, action: str, state: Mapping[str, Any] | None) -> None:
    """The console's applied catalog create/delete, in the mirror at once."""
    # The workspace being worked in: the change request's, while it is applied.
    workspace = workspace_default_key()
    if action == "delete":
        Catalog.objects.filter(workspace=workspace, name=name).delete()
        return
    assert state is not None
    Catalog.objects.update_or_create(
        workspace=workspace,
        name=name,
        defaults={
            "description": state.get("description", ""),
            "fields": list(state.get("fields", [])),
            "present_in_braze": True,
        },
    )
