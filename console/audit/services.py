"""Writes of the audit trail. Every entry goes through `audit_append`."""

import ipaddress
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from console.audit import hashing
from console.audit.context import current_origin
from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal
from console.roles import user_roles

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


def _secret_values() -> list[str]:
    values = [
        getattr(settings, name, "")
        for name in ("BRAZE_API_KEY", "BRAZE_SCIM_TOKEN", "SECRET_KEY", "AUDIT_CHECKPOINT_KEY")
    ]
    return [v for v in values if isinstance(v, str) and len(v) >= 8]


def redact(value: Any, _secrets: list[str] | None = None) -> Any:
    """Mask values under secret-looking keys, and any configured secret found in text."""
    found = _secret_values() if _secrets is None else _secrets
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
) -> AuditEntry:
    """Append one entry, in the caller's transaction (it commits or rolls back with it).

    `data` is redacted and stored readable; `personal` (e.g. email addresses) is stored
    beside the chain so `audit_personal_erase` can remove it without breaking a hash.
    """
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
        }
        entry = AuditEntry(
            **fields,
            prev_hash=prev_hash,
            hash=hashing.chain_hash(prev_hash, hashing.entry_content(**fields)),
        )
        entry.save(force_insert=True)
        if clean_personal is not None:
            AuditPersonal.objects.create(entry=entry, salt=salt, data=clean_personal)
    return entry


def audit_personal_erase(*, actor: Actor, field: str, value: str) -> int:
    """Erase personal values (e.g. an email address) from the trail; hashes stay valid."""
    with transaction.atomic(durable=True):
        rows = AuditPersonal.objects.filter(**{f"data__{field}": value})
        count = rows.count()
        rows.delete()
        audit_append(
            actor=actor,
            action="audit.personal_erased",
            data={"field": field, "entries": count},
        )
    return count


def _checkpoint_file() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR) / "checkpoints.jsonl"


def checkpoint_as_dict(cp: AuditCheckpoint) -> dict[str, Any]:
    return {
        "created_at": cp.created_at.isoformat(timespec="microseconds"),
        "last_seq": cp.last_seq,
        "head_hash": cp.head_hash,
        "entry_count": cp.entry_count,
        "key_id": cp.key_id,
        "signature": cp.signature,
    }


def audit_checkpoint_issue() -> AuditCheckpoint:
    """Sign the chain's head (also when nothing happened, so a cut tail shows)."""
    key = settings.AUDIT_CHECKPOINT_KEY
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
    path = _checkpoint_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(hashing.canonical_json(checkpoint_as_dict(checkpoint)) + "\n")
    return checkpoint
