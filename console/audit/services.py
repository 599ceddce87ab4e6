"""Writes of the audit trail. Every entry goes through `audit_append`."""

import ipaddress
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from console.audit import events, hashing, verify
from console.audit.checkpoints import checkpoint_as_dict, checkpoint_file_path
from console.audit.context import current_origin
from console.audit.events import ERASABLE_FIELDS, erasable_value
from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal
from console.audit.selectors import (
    audit_personal_matching,
    audit_verification_pending,
    audit_verification_result,
)
from console.celery import task_enqueue
from console.changes.erasure import change_requests_personal_erase
from console.roles import user_roles
from console.secrets import secret_values

logger = logging.getLogger(__name__)

# One constant key for pg_advisory_xact_lock: every append in the cluster queues here,
# so the chain is extended by one transaction at a time and can never fork.
_CHAIN_LOCK_KEY = 0x4155444954  # "AUDIT"
REDACTED = "********"


@dataclass(frozen=True, slots=True)
class SystemActor:
    """A named non-human actor (scheduled jobs, sign-in attempts by unknown users)."""

    name: str


SYSTEM = SystemActor("system")
ANONYMOUS = SystemActor("anonymous")

type Actor = AbstractBaseUser | SystemActor


class Outcome:
    SUCCESS = "success"
    FAILURE = "failure"
    REFUSED = "refused"


def redact(value: Any, _secrets: list[str] | None = None) -> Any:
    """Mask values under secret-looking keys, and any configured secret found in text."""
    found = secret_values() if _secrets is None else _secrets
    names = [n.lower() for n in settings.AUDIT_REDACTED_FIELDS]
    if isinstance(value, dict):
        return {
            str(k): REDACTED if any(n in str(k).lower() for n in names) else redact(v, found)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, found) for v in value]
    if isinstance(value, str):
        for secret in found:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value), found)


def _actor_fields(actor: Actor) -> tuple[int | None, str, str]:
    if isinstance(actor, SystemActor):
        return None, actor.name, ""
    if isinstance(actor, AnonymousUser) or not actor.is_authenticated:
        return None, ANONYMOUS.name, ""
    roles = ",".join(sorted(role.value for role in user_roles(actor)))
    return int(actor.pk), actor.get_username(), roles


def _normal_ip(ip: str | None) -> str | None:
    try:
        return ipaddress.ip_address(ip).compressed if ip else None
    except ValueError:
        return None


def audit_append(
    *,
    actor: Actor,
    action: str,
    outcome: str = Outcome.SUCCESS,
    resource_type: str = "",
    resource_id: str = "",
    change_request_id: int | None = None,
    data: dict[str, Any] | None = None,
    personal: dict[str, Any] | None = None,
    workspace: str | None = None,
) -> AuditEntry:
    """Append one entry, in the caller's transaction (it commits or rolls back with it).

    `workspace` is the key of the workspace the event happened in; by default the one the
    request (or task, through its origin) is in, "" when none.

    `data` is redacted and stored readable; `personal` (e.g. email addresses) is stored
    beside the chain so `audit_personal_erase` can remove it without breaking a hash.
    """
    if not settings.AUDIT_CHAIN_KEY:
        raise RuntimeError("AUDIT_CHAIN_KEY is not set in this process: it may not append")
    actor_id, actor_name, actor_roles = _actor_fields(actor)
    origin = current_origin()
    # A JSON round trip fixes the exact form PostgreSQL hands back to the verifier.
    clean = json.loads(hashing.canonical_json(redact(data or {})))
    salt, digest, clean_personal = "", "", None
    if personal:
        clean_personal = json.loads(hashing.canonical_json(redact(personal)))
        salt = secrets.token_hex(16)
        digest = hashing.personal_digest(salt, clean_personal)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
            cursor.execute("SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1")
            head = cursor.fetchone()
        seq, prev_hash = (head[0] + 1, head[1]) if head else (1, hashing.GENESIS_HASH)
        fields: dict[str, Any] = {
            "seq": seq,
            "occurred_at": timezone.now(),
            "actor_id": actor_id,
            "actor_name": actor_name[:200],
            "actor_roles": actor_roles[:200],
            "ip": _normal_ip(origin.ip),
            "user_agent": origin.user_agent[:400],
            "via": origin.via[:100],
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id[:500],
            "change_request_id": change_request_id,
            "outcome": outcome,
            "data": clean,
            "personal_digest": digest,
            "workspace": (origin.workspace if workspace is None else workspace)[:40],
        }
        entry = AuditEntry(
            **fields,
            prev_hash=prev_hash,
            hash=hashing.chain_hash(
                prev_hash, hashing.entry_content(**fields), settings.AUDIT_CHAIN_KEY
            ),
        )
        entry.save(force_insert=True)
        if clean_personal is not None:
            AuditPersonal.objects.create(entry=entry, salt=salt, data=clean_personal)
    return entry


def audit_chain_key_boundary(*, using: str = "default") -> AuditEntry | None:
    """Mark where the keyed chain begins, once, on a trail begun with unkeyed hashes.

    The boundary entry is the first keyed one; its data names the last seq of the old rule.
    Run by the migration that introduced the key (an empty trail needs no boundary).
    """
    if using != "default":
        return None  # audit_append writes on the default connection only
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        head = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
        if head is None or AuditEntry.objects.filter(action=events.AUDIT_CHAIN_KEYED).exists():
            return None
        return audit_append(
            actor=SYSTEM,
            action=events.AUDIT_CHAIN_KEYED,
            resource_type="audit",
            data={"legacy_until": head, "key_id": hashing.key_id(settings.AUDIT_CHAIN_KEY)},
        )


def reason_names_value(*, reason: str, value: str) -> bool:
    """Whether a reason repeats the value: it would be chained, so never erasable again."""
    pattern = rf"(?<!\w){re.escape(value.strip())}(?!\w)"
    return bool(value.strip()) and re.search(pattern, reason, re.IGNORECASE) is not None


def _value_digest(*, field: str, value: str) -> dict[str, str]:
    """What an entry about a person's value may keep of it: a keyed digest, and the key's id.

    Keyed from the chain key, which the web process holds (the checkpoint key stays with
    the signer)."""
    key = settings.AUDIT_CHAIN_KEY
    return {
        "value_digest": hashing.erased_value_digest(key, field, value),
        "digest_key_id": hashing.key_id(key),
    }


def audit_personal_erase(*, actor: Actor, field: str, value: str, reason: str) -> AuditEntry:
    """Erase a person's data from the trail and the change requests on request.

    The whole erasable part of each entry holding `value` as `field` is deleted (an
    entry's personal part is about one person, e.g. the username beside the email), and
    change requests about that person have their personal values replaced by a marker
    (their hashes, keyed digests made when they were written, stay as they are). Every
    chain hash stays valid. The erasure is itself an entry, with the reason, the entries'
    seqs and the change requests' ids, which the detail pages read. It keeps only a keyed
    digest of the value: the trail cannot give it back.

    Raises console.changes.erasure.ErasureRefused while a change request about the person
    is still open (nothing is erased then).
    """
    value, reason = erasable_value(field=field, value=value), reason.strip()
    if field not in ERASABLE_FIELDS:
        raise ValueError(f"{field!r} is not a kind of personal data the audit trail keeps")
    if not value or not reason:
        raise ValueError("an erasure needs a value and a reason")
    if reason_names_value(reason=reason, value=value):
        raise ValueError("the reason would keep the erased value in the chained entry")
    with transaction.atomic(durable=True):
        change_requests = change_requests_personal_erase(field=field, value=value)
        matching = audit_personal_matching(field=field, value=value).values_list("pk", flat=True)
        # Every entry about those requests: their comments are kept in the erasable part.
        of_requests = AuditPersonal.objects.filter(
            entry__change_request_id__in=change_requests
        ).values_list("pk", flat=True)
        seqs = sorted({*matching, *of_requests})
        AuditPersonal.objects.filter(pk__in=seqs).delete()
        return audit_append(
            actor=actor,
            action=events.AUDIT_PERSONAL_ERASED,
            resource_type="audit",
            data={
                "field": field,
                "entries": len(seqs),
                "seqs": seqs,
                "change_requests": change_requests,
                "reason": reason,
                **_value_digest(field=field, value=value),
            },
        )


def audit_personal_lookup_record(
    *, actor: Actor, field: str, value: str, entries: int
) -> AuditEntry:
    """Record that `actor` looked up which entries hold a person's data (the erasure preview).

    Finding where someone appears is itself an access to their data, so it is recorded like
    an export; as with an erasure, only a keyed digest of the value is kept.
    """
    value = erasable_value(field=field, value=value)
    with transaction.atomic(durable=True):
        return audit_append(
            actor=actor,
            action=events.AUDIT_PERSONAL_LOOKED_UP,
            resource_type="audit",
            data={"field": field, "entries": entries, **_value_digest(field=field, value=value)},
        )


def audit_verification_request(*, actor: AbstractBaseUser) -> tuple[AuditEntry, bool]:
    """Record that `actor` asked to verify the trail and queue the walk after commit.

    Returns the request entry and whether it is new: while one verification is queued
    or running, asking again returns that one instead of queueing a second walk.
    """
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            # Under the chain lock, two people clicking at once queue one walk.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        pending = audit_verification_pending()
        if pending is not None:
            return pending, False
        entry = audit_append(
            actor=actor, action=events.AUDIT_VERIFY_REQUESTED, resource_type="audit"
        )
        request_seq, actor_id = entry.seq, actor.pk
        transaction.on_commit(
            lambda: task_enqueue("console.audit.tasks.audit_verify_task", request_seq, actor_id)
        )
    return entry, True


def audit_verification_run(*, request_seq: int, actor_id: int) -> AuditEntry:
    """Walk the chain and the checkpoints; record the outcome as an entry by whoever asked.

    Run by the Celery task. A redelivered task finds the recorded result and walks
    nothing again.
    """
    if (done := audit_verification_result(request_seq=request_seq)) is not None:
        return done
    actor = get_user_model().objects.get(pk=actor_id)
    started = time.monotonic()
    data: dict[str, Any] = {"request_seq": request_seq}
    try:
        report = verify.audit_verify()
    except Exception as exc:
        logger.exception("audit verification %s stopped", request_seq)
        ok = False
        data["error"] = f"the verification stopped before the end ({type(exc).__name__})"
    else:
        ok = report.ok
        data |= {
            "entries_checked": report.entries,
            "head_seq": report.last_seq,
            "checkpoints_checked": report.checkpoints,
            "anchor_seq": report.anchor_seq,
            "anchor_created_at": report.anchor_created_at,
            "first_bad_seq": report.first_bad_seq,
            "reason": report.first_bad_reason or (report.problems[0] if report.problems else None),
            "problems": report.problems[:5],
            "warnings": report.warnings[:5],
        }
    data["duration_ms"] = round((time.monotonic() - started) * 1000)
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        if (done := audit_verification_result(request_seq=request_seq)) is not None:
            return done
        return audit_append(
            actor=actor,
            action=events.AUDIT_VERIFIED,
            outcome=Outcome.SUCCESS if ok else Outcome.FAILURE,
            resource_type="audit",
            data=data,
        )


# Set by the web (an Admin's "sign a checkpoint now"), taken by the signer process, which
# alone holds the checkpoint key.
CHECKPOINT_REQUESTED = "audit:checkpoint-requested"


def audit_checkpoint_request() -> None:
    """Ask the signer to sign the head now instead of at the next scheduled time."""
    transaction.on_commit(lambda: cache.set(CHECKPOINT_REQUESTED, "1", timeout=3600))


def audit_checkpoint_requested() -> bool:
    """Take a pending request to sign now (the signer's loop asks this every second)."""
    return bool(cache.delete(CHECKPOINT_REQUESTED))


def audit_checkpoint_sign_due(
    *, key: str, last_signed: float | None, interval_seconds: float
) -> AuditCheckpoint | None:
    """One turn of the signer's loop: sign when asked, or when the interval is up.

    `last_signed` is a time.monotonic() reading (None: nothing signed yet by this process).
    """
    due = last_signed is None or time.monotonic() - last_signed >= interval_seconds
    try:
        requested = audit_checkpoint_requested()
    except Exception:
        # Redis away: the schedule does not depend on it, only "sign now" waits.
        logger.warning("could not read checkpoint requests from the cache", exc_info=True)
        requested = False
    if requested or due:
        return audit_checkpoint_issue(key=key)
    return None


class CheckpointKeyMissing(RuntimeError):
    """This process was not given the checkpoint key: only the signer signs."""


def audit_checkpoint_issue(*, key: str | None = None) -> AuditCheckpoint:
    """Sign the chain's head (also when nothing happened, so a cut tail shows).

    Run by the signer process (manage.py audit_checkpoint_signer), the one holding the key.
    """
    key = key or settings.AUDIT_CHECKPOINT_KEY
    if not key:
        raise CheckpointKeyMissing("AUDIT_CHECKPOINT_KEY is not set in this process")
    with transaction.atomic():
        with connection.cursor() as cursor:
            # The chain lock makes (head, count) one consistent moment.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
            cursor.execute("SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1")
            head = cursor.fetchone()
        last_seq, head_hash = head if head else (0, hashing.GENESIS_HASH)
        created_at = timezone.now()
        # seq is gapless (assigned under the lock), so the head's seq is the count.
        message = hashing.checkpoint_message(
            created_at=created_at, last_seq=last_seq, head_hash=head_hash, entry_count=last_seq
        )
        checkpoint = AuditCheckpoint.objects.create(
            created_at=created_at,
            last_seq=last_seq,
            head_hash=head_hash,
            entry_count=last_seq,
            key_id=hashing.key_id(key),
            signature=hashing.checkpoint_sign(key, message),
        )
    path = checkpoint_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(hashing.canonical_json(checkpoint_as_dict(checkpoint)) + "\n")
    return checkpoint
