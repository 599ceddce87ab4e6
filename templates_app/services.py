"""Writes: proposals (change requests), the version history, the drift sync, previews and
audited preference-center links."""

from __future__ import annotations

import difflib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import caches
from django.db import transaction

from console.audit import events
from console.audit.services import Outcome, SystemActor, audit_append
from console.braze import BrazeError, BrazeNotFound, get_client
from console.changes.diff import field_diff, is_long_text
from console.changes.models import ChangeRequest, ChangeState
from console.changes.resource_types import resource_type_get
from console.changes.services import change_request_propose
from console.workspaces import workspace_active, workspace_default_key
from templates_app import selectors
from templates_app.kinds import KINDS, ContentKind
from templates_app.models import (
    ContentVersion,
    PreviewProfile,
    PreviewSettings,
    ResourceType,
    VersionSource,
)
from templates_app.personalize import Person
from templates_app.search import version_includes

logger = logging.getLogger(__name__)

SYNC_ACTOR = SystemActor("braze-sync")
PREVIEW_SECONDS = 3600
_PREVIEW_KEY = "templates_app:preview:{user}:{token}"
# A preview rendered from a Braze user's data is read once, and soon, or not at all.
PREVIEW_ONCE_SECONDS = 60
_PREVIEW_ONCE_KEY = "templates_app:preview-once:{user}:{token}"


# --- history -------------------------------------------------------------------------------


def version_record(
    *,
    resource_type: str,
    braze_id: str,
    snapshot: dict[str, Any],
    source: str,
    remote_updated_at: str = "",
    state: str = "",
    change_request_id: int | None = None,
) -> tuple[ContentVersion, ContentVersion | None]:
    """Store `snapshot` as the next version unless it equals the latest one.

    Returns (the version now current, the one before it if a new row was stored). For
    Content Blocks, a change of the console-known state alone is also a new version.
    """
    digest = selectors.digest_of(snapshot)
    with transaction.atomic():
        # Serialise writers of one resource so two syncs cannot number a version twice.
        latest = (
            ContentVersion.objects.select_for_update()
            .filter(
                workspace=workspace_default_key(), resource_type=resource_type, braze_id=braze_id
            )
            .order_by("-version")
            .first()
        )
        if latest is not None and latest.digest == digest and (not state or state == latest.state):
            if remote_updated_at and latest.remote_updated_at != remote_updated_at:
                latest.remote_updated_at = remote_updated_at
                latest.save(update_fields=["remote_updated_at"])
            return latest, None
        name = str(snapshot.get("name") or snapshot.get("template_name") or braze_id)
        version = ContentVersion.objects.create(
            resource_type=resource_type,
            braze_id=braze_id,
            version=(latest.version + 1) if latest else 1,
            name=name[:300],
            snapshot=snapshot,
            digest=digest,
            source=source,
            remote_updated_at=remote_updated_at,
            state=state or (latest.state if latest else ""),
            change_request_id=change_request_id,
            includes=version_includes(resource_type=resource_type, snapshot=snapshot),
        )
    return version, latest


def version_record_applied(
    *, resource_type: str, braze_id: str, identifier: str, state: str = ""
) -> ContentVersion:
    """Keep what Braze holds right after the console's write (called by the appliers)."""
    snapshot, updated = KINDS[resource_type].read(braze_id)
    change_request_id = (
        ChangeRequest.objects.filter(
            resource_type=resource_type, identifier=identifier, state=ChangeState.APPLYING
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    version, _ = version_record(
        resource_type=resource_type,
        braze_id=braze_id,
        snapshot=snapshot,
        source=VersionSource.APPLIED,
        remote_updated_at=updated,
        state=state,
        change_request_id=change_request_id,
    )
    selectors.lists_forget()
    return version


def _text_diff(before: Any, after: Any) -> list[str]:
    lines = difflib.unified_diff(
        str(before or "").splitlines(), str(after or "").splitlines(), lineterm="", n=1
    )
    return list(lines)[2:202]  # skip the file headers; keep audit entries bounded


def change_summary(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """Field changes for the audit trail: long text as a unified line diff."""
    rows = []
    for row in field_diff(before, after):
        if is_long_text(row["before"]) or is_long_text(row["after"]):
            rows.append({"field": row["field"], "diff": _text_diff(row["before"], row["after"])})
        else:
            rows.append(row)
    return rows


@dataclass
class SyncReport:
    seen: int = 0
    new_versions: int = 0
    external_changes: int = 0
    errors: list[str] = field(default_factory=list)


def _sync_one(
    report: SyncReport, resource_type: str, braze_id: str, remote_updated_at: str
) -> None:
    report.seen += 1
    latest = selectors.version_latest(resource_type=resource_type, braze_id=braze_id)
    if latest is not None and remote_updated_at and latest.remote_updated_at == remote_updated_at:
        return  # Braze's list says nothing changed since the version the console holds
    try:
        snapshot, updated = KINDS[resource_type].read(braze_id)
    except BrazeNotFound:
        return
    with transaction.atomic():
        version, previous = version_record(
            resource_type=resource_type,
            braze_id=braze_id,
            snapshot=snapshot,
            source=VersionSource.SYNCED,
            remote_updated_at=updated or remote_updated_at,
        )
        if previous is None:
            if latest is None:
                report.new_versions += 1  # first sighting: history starts here
            return
        report.new_versions += 1
        report.external_changes += 1
        # The console's own writes are stored when applied, so a difference found here
        # was made outside the console (in the Braze dashboard or by another API client).
        audit_append(
            actor=SYNC_ACTOR,
            action=events.CONTENT_EXTERNAL_CHANGE,
            resource_type=resource_type,
            resource_id=braze_id,
            data={
                "name": version.name,
                "from_version": previous.version,
                "to_version": version.version,
                "changes": change_summary(previous.snapshot, version.snapshot),
            },
        )


def content_sync() -> SyncReport:
    """Read every item of every kind of content; keep new versions; audit drift."""
    report = SyncReport()
    selectors.lists_forget()
    try:
        for kind in KINDS.values():
            for braze_id, updated_at in kind.stamps():
                _sync_one(report, kind.resource_type, braze_id, updated_at)
    except BrazeError as exc:
        logger.warning("content sync stopped: %r", exc)
        report.errors.append(str(exc))
    return report


# --- proposals -----------------------------------------------------------------------------


def content_propose(
    *,
    actor: AbstractBaseUser,
    kind: ContentKind,
    braze_id: str | None,
    data: dict[str, Any],
    base_snapshot: dict[str, Any] | None,
    title: str = "",
) -> ChangeRequest:
    """Open a change request creating (no id) or updating an item of `kind`.

    `data` has passed the kind's form (the rules Braze would apply); `base_snapshot` is what
    Braze held when the editor loaded the item (the apply step refuses to overwrite anything
    else).
    """
    payload = kind.payload(data)
    creating = braze_id is None
    verb = "Create" if creating else "Edit"
    return change_request_propose(
        actor=actor,
        resource_type=kind.resource_type,
        identifier=kind.create_identifier(payload) if braze_id is None else braze_id,
        action="create" if creating else "update",
        payload=payload,
        base_snapshot=None if creating else base_snapshot,
        title=title or f"{verb} {kind.noun} {payload[kind.name_field]}",
    )


def version_restore(*, actor: AbstractBaseUser, version: ContentVersion) -> ChangeRequest:
    """Propose putting an old version back; Braze's current state is the base."""
    base = resource_type_get(version.resource_type).applier.read_current(version.braze_id)
    if base is None:
        raise BrazeNotFound("The resource no longer exists in Braze.")
    data = dict(version.snapshot)
    if version.resource_type == ResourceType.CONTENT_BLOCK:
        # Braze does not report a block's state, so history does not hold it either.
        known = selectors.content_block_state(content_block_id=version.braze_id)
        data["state"] = known or "active"
    return content_propose(
        actor=actor,
        kind=KINDS[version.resource_type],
        braze_id=version.braze_id,
        data=data,
        base_snapshot=base,
        title=f"Restore {version.get_resource_type_display()} {version.name} to v{version.version}",
    )


# --- previews and links ----------------------------------------------------------------------


class PreviewRefused(Exception):
    """A preview that is not kept; the message says why, in words for the page."""


def preview_stash(*, user: AbstractBaseUser, html: str, once: bool = False) -> str:
    """Keep `html` for the sandboxed preview URL; only the same user can open it.

    Previews live in their own Redis database (the "previews" cache), each at most
    PREVIEW_MAX_BYTES, at most PREVIEW_RATE_PER_MINUTE a minute and PREVIEW_MAX_PER_USER at
    once per person (the oldest is dropped). Raises PreviewRefused past a limit.

    `once` is for HTML rendered from a real person's data: the frame can load it one time,
    within PREVIEW_ONCE_SECONDS, and it is deleted as it is read.
    """
    store = caches["previews"]
    size = len(html.encode())
    if size > settings.PREVIEW_MAX_BYTES:
        raise PreviewRefused(
            f"This HTML is too large to preview here ({size // 1024:,} KB; previews show up "
            f"to {settings.PREVIEW_MAX_BYTES // 1024:,} KB)."
        )
    minute = int(time.time() // 60)
    rate_key = f"rate:{user.pk}:{minute}"
    store.add(rate_key, 0, 120)
    if store.incr(rate_key) > settings.PREVIEW_RATE_PER_MINUTE:
        raise PreviewRefused("Too many previews in a minute; the preview resumes shortly.")
    token = secrets.token_urlsafe(18)
    if once:
        store.set(_PREVIEW_ONCE_KEY.format(user=user.pk, token=token), html, PREVIEW_ONCE_SECONDS)
        return token
    store.set(_PREVIEW_KEY.format(user=user.pk, token=token), html, PREVIEW_SECONDS)
    # The person's previews, oldest first: past the cap the oldest are dropped. Two requests
    # at once may keep one more for a while; every preview expires after PREVIEW_SECONDS.
    index_key = f"index:{user.pk}"
    tokens = [*(store.get(index_key) or []), token]
    dropped, kept = (
        tokens[: -settings.PREVIEW_MAX_PER_USER],
        tokens[-settings.PREVIEW_MAX_PER_USER :],
    )
    if dropped:
        store.delete_many([_PREVIEW_KEY.format(user=user.pk, token=t) for t in dropped])
    store.set(index_key, kept, PREVIEW_SECONDS)
    return token


def preview_html(*, user: AbstractBaseUser, token: str) -> str | None:
    store = caches["previews"]
    value = store.get(_PREVIEW_KEY.format(user=user.pk, token=token))
    if value is None:
        once_key = _PREVIEW_ONCE_KEY.format(user=user.pk, token=token)
        value = store.get(once_key)
        store.delete(once_key)
    return value if isinstance(value, str) else None


def preference_center_user_url_generate(
    *, actor: AbstractBaseUser, preference_center_id: str, external_id: str
) -> str:
    """Ask Braze for one user's preference-center link; audited, never stored."""
    try:
        url = get_client().preference_center_user_url(
            preference_center_id=preference_center_id, user_id=external_id
        )
    except BrazeError as exc:
        with transaction.atomic(durable=True):
            audit_append(
                actor=actor,
                action=events.PREFERENCE_CENTER_USER_URL,
                outcome=Outcome.FAILURE,
                resource_type=ResourceType.PREFERENCE_CENTER,
                resource_id=preference_center_id,
                data={"error_ids": list(exc.error_ids)},
                personal={"external_id": external_id},
            )
        raise
    with transaction.atomic(durable=True):
        audit_append(
            actor=actor,
            action=events.PREFERENCE_CENTER_USER_URL,
            resource_type=ResourceType.PREFERENCE_CENTER,
            resource_id=preference_center_id,
            personal={"external_id": external_id},
        )
    return url


# --- previewing as an existing Braze user ---------------------------------------------------

# What a preview reads of a Braze user: the standard attributes Liquid names and the custom
# attributes. Naming them keeps the answer small, and leaving out campaigns_received and
# canvases_received keeps the request eligible for the endpoint's faster limit.
BRAZE_USER_FIELDS = (
    "braze_id",
    "country",
    "custom_attributes",
    "dob",
    "email",
    "external_id",
    "first_name",
    "gender",
    "home_city",
    "language",
    "last_name",
    "phone",
    "random_bucket",
    "time_zone",
)


class BrazeUserUnknown(Exception):
    """Braze has no user with the external id asked for."""


def preview_braze_user_read(
    *, actor: AbstractBaseUser, external_id: str, resource_type: str = "", resource_id: str = ""
) -> Person:
    """The Braze user with `external_id`, as a person to preview one message as.

    The export is personal data: it is returned to the caller for the one render and kept
    nowhere (no row, no cache entry, no log line). Each look-up is an audit entry, found,
    unknown or failed, with the external id in its erasable part and the content previewed
    as the resource. Raises BrazeUserUnknown or the client's BrazeError.
    """
    try:
        export = get_client().users_export_ids(
            external_ids=[external_id], fields_to_export=BRAZE_USER_FIELDS
        )
    except BrazeError as exc:
        with transaction.atomic(durable=True):
            audit_append(
                actor=actor,
                action=events.PREVIEW_BRAZE_USER_LOOKUP,
                outcome=Outcome.FAILURE,
                resource_type=resource_type,
                resource_id=resource_id,
                data={"error_ids": list(exc.error_ids)},
                personal={"external_id": external_id},
            )
        raise
    user = next((u for u in export.users if u.get("external_id") == external_id), None)
    with transaction.atomic(durable=True):
        audit_append(
            actor=actor,
            action=events.PREVIEW_BRAZE_USER_LOOKUP,
            resource_type=resource_type,
            resource_id=resource_id,
            data={"found": user is not None},
            personal={"external_id": external_id},
        )
    if user is None:
        raise BrazeUserUnknown(external_id)
    return Person(
        f"Braze user {external_id}",
        dict(user),
        str(user.get("language") or ""),
        str(user.get("time_zone") or ""),
    )


# --- preview profiles ------------------------------------------------------------------------

PROFILE_FIELDS = ("name", "attributes", "language", "time_zone")


def preview_profile_save(
    *, actor: AbstractBaseUser, profile: PreviewProfile | None, data: dict[str, Any]
) -> PreviewProfile:
    """Create (`profile` None) or change a preview profile, with its audit entry."""
    creating = profile is None
    target = profile or PreviewProfile()
    before = {name: getattr(target, name) for name in PROFILE_FIELDS} if not creating else {}
    for name in PROFILE_FIELDS:
        setattr(target, name, data[name])
    with transaction.atomic(durable=True):
        target.save()
        changed = sorted(name for name in PROFILE_FIELDS if before.get(name) != data[name])
        audit_append(
            actor=actor,
            action=(events.PREVIEW_PROFILE_CREATE if creating else events.PREVIEW_PROFILE_UPDATE),
            resource_type="preview_profile",
            resource_id=str(target.pk),
            data={"name": target.name, "changed": changed},
        )
    return target


def preview_profile_delete(*, actor: AbstractBaseUser, profile: PreviewProfile) -> None:
    with transaction.atomic(durable=True):
        pk = profile.pk
        profile.delete()
        audit_append(
            actor=actor,
            action=events.PREVIEW_PROFILE_DELETE,
            resource_type="preview_profile",
            resource_id=str(pk),
            data={"name": profile.name},
        )


DEMO_PROFILES: tuple[dict[str, Any], ...] = (
    {
        "name": "Ana, a gold member (pt)",
        "attributes": {
            "first_name": "Ana",
            "last_name": "Souza",
            "email": "ana@example.com",
            "external_id": "demo-ana",
            "custom_attributes": {
                "plan": "gold",
                "points": 1250,
                "favorite_foods": ["figs", "pasta"],
            },
        },
        "language": "pt",
        "time_zone": "America/Sao_Paulo",
    },
    {
        "name": "No first name (en)",
        "attributes": {"email": "someone@example.com", "custom_attributes": {"points": 0}},
        "language": "en",
        "time_zone": "Europe/London",
    },
    {
        "name": "Kenji, new sign-up (ja)",
        "attributes": {
            "first_name": "Kenji",
            "email": "kenji@example.com",
            "external_id": "demo-kenji",
            "custom_attributes": {"plan": "trial", "points": 40},
        },
        "language": "ja",
        "time_zone": "Asia/Tokyo",
    },
)


def preview_profiles_seed(*, actor: AbstractBaseUser | SystemActor) -> list[PreviewProfile]:
    """The demo profiles `make run` starts with; existing ones (by name) are left as they are."""
    made = []
    for demo in DEMO_PROFILES:
        if PreviewProfile.objects.filter(
            workspace=workspace_active().key, name=demo["name"]
        ).exists():
            continue
        with transaction.atomic(durable=True):
            profile = PreviewProfile.objects.create(**demo)
            audit_append(
                actor=actor,
                action=events.PREVIEW_PROFILE_CREATE,
                resource_type="preview_profile",
                resource_id=str(profile.pk),
                data={"name": profile.name, "changed": list(PROFILE_FIELDS)},
            )
        made.append(profile)
    return made


def connected_content_samples_save(*, actor: AbstractBaseUser, samples: dict[str, str]) -> None:
    """Replace the workspace's Connected Content sample answers, with its audit entry."""
    with transaction.atomic(durable=True):
        settings, _ = PreviewSettings.objects.select_for_update().get_or_create(
            workspace=workspace_active().key
        )
        before = settings.connected_content_samples or {}
        settings.connected_content_samples = samples
        settings.save()
        audit_append(
            actor=actor,
            action=events.PREVIEW_SETTINGS_UPDATE,
            resource_type="preview_settings",
            resource_id=settings.workspace,
            data={
                "added": sorted(set(samples) - set(before)),
                "removed": sorted(set(before) - set(samples)),
                "changed": sorted(p for p in samples if p in before and before[p] != samples[p]),
            },
        )
