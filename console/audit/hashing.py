"""Canonical forms and digests of audit entries and checkpoints (one place, used by both
the writer and the verifier, so they cannot drift apart)."""

import hashlib
import hmac
import json
import json.encoder
from _json import make_encoder
from collections.abc import Callable
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64

# What json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) does,
# without building a new encoder for each call (most of the cost of a small value).
_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_canonical, _default = _encoder.encode, _encoder.default


def canonical_json(value: Any) -> str:
    return _canonical(value)


# The C encoder behind canonical_json (CPython's json accelerator), made once: encode() makes
# a new one on every call, which is most of the cost for the small values a walk over ten
# million entries encodes. It has no circularity check, so it is only for values that JSON
# decoding just produced.
_c_canonical = make_encoder(
    None, _default, json.encoder.encode_basestring, None, ":", ",", True, False, True
)


def canonical_json_decoded(value: Any) -> str:
    """`canonical_json` of a value decoded from JSON text (acyclic by construction)."""
    if isinstance(value, str):
        return _canonical(value)
    return "".join(_c_canonical(value, 0))


# One JSON value from the start of a text, without loads()'s whitespace checks: for
# PostgreSQL's own output of a json(b) column, which is one value and nothing around it.
json_scan = json.JSONDecoder().raw_decode


def entry_content(
    *,
    seq: int,
    occurred_at: datetime | str,
    actor_id: int | None,
    actor_name: str,
    actor_roles: str,
    ip: str | None,
    user_agent: str,
    via: str,
    action: str,
    resource_type: str,
    resource_id: str,
    change_request_id: int | None,
    outcome: str,
    data: Any,
    personal_digest: str,
    workspace: str = "",
) -> str:
    # The workspace joins the content only when set, so entries written before workspaces
    # (none) hash exactly as they did.
    return canonical_json(
        [
            seq,
            occurred_at
            if isinstance(occurred_at, str)
            else occurred_at.isoformat(timespec="microseconds"),
            actor_id,
            actor_name,
            actor_roles,
            ip,
            user_agent,
            via,
            action,
            resource_type,
            resource_id,
            change_request_id,
            outcome,
            data,
            personal_digest,
            *([workspace] if workspace else []),
        ]
    )


def derived_key(key: str, purpose: str) -> bytes:
    """A key for one purpose, so a digest made for one use never matches another."""
    return hmac.new(key.encode(), b"braze-console:" + purpose.encode(), hashlib.sha256).digest()


def chain_hash(prev_hash: str, content: str, key: str | None) -> str:
    """The hash chaining an entry to the one before.

    Keyed (HMAC-SHA256 with AUDIT_CHAIN_KEY, which PostgreSQL never holds), so whoever can
    only write to the database cannot make an entry that verifies. `key=None` is the rule of
    entries written before the chain was keyed, which verify as they were written.
    """
    if key is None:
        return hashlib.sha256((prev_hash + content).encode()).hexdigest()
    return chain_hasher(key)(prev_hash, content)


def chain_hasher(key: str | None) -> Callable[[str, str], str]:
    """`chain_hash` with the key prepared once, for walks over millions of entries."""
    if key is None:
        return lambda prev, content: hashlib.sha256((prev + content).encode()).hexdigest()
    # HMAC (RFC 2104) spelled out over SHA-256 states made once: hmac.HMAC's copy() and
    # hexdigest() are Python methods, a third of the cost of a short message.
    block = derived_key(key, "audit-chain").ljust(_SHA256_BLOCK, b"\0")
    inner_start = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer_start = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def keyed(prev: str, content: str) -> str:
        inner = inner_start.copy()
        inner.update((prev + content).encode())
        outer = outer_start.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    return keyed


_SHA256_BLOCK = hashlib.sha256().block_size


def personal_digest(salt: str, data: Any) -> str:
    return hashlib.sha256((salt + canonical_json(data)).encode()).hexdigest()


def key_id(key: str) -> str:
    """A short public name for the signing key, so rotated keys can be told apart."""
    return hashlib.sha256(b"key-id:" + key.encode()).hexdigest()[:16]


def checkpoint_message(
    *, created_at: datetime, last_seq: int, head_hash: str, entry_count: int
) -> bytes:
    return canonical_json(
        [created_at.isoformat(timespec="microseconds"), last_seq, head_hash, entry_count]
    ).encode()


def checkpoint_sign(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def erased_value_digest(key: str, field: str, value: str) -> str:
    """Keyed digest of an erased value: whoever holds the key can confirm that a given
    value was erased, while the trail itself no longer holds anything readable (a plain
    hash of an email address is reversed by guessing)."""
    derived = hashlib.sha256(b"erased-value:" + key.encode()).digest()
    return hmac.new(derived, f"{field}:{value}".encode(), hashlib.sha256).hexdigest()


def keyed_digest(key: str, purpose: str, content: str) -> str:
    """HMAC-SHA256 of content under a key derived for `purpose`: for digests of data that
    may hold personal values (a change request's payload), which a plain SHA-256 would
    let anyone confirm by hashing a guess."""
    return hmac.new(derived_key(key, purpose), content.encode(), hashlib.sha256).hexdigest()
