"""A signed checkpoint's stored form: the line the signer appends to the checkpoint file, and
the dict the verifier and the integrity page compare with the database's copy."""

from pathlib import Path
from typing import Any

from django.conf import settings

from console.audit.models import AuditCheckpoint


def checkpoint_file_path() -> Path:
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
