"""What the run-time database login can write is caught by verification.

The console's login may INSERT audit entries and DELETE/INSERT erasable personal rows (an
erasure deletes them). It does not hold AUDIT_CHAIN_KEY, so nothing it writes verifies.
"""

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse

from console.audit import hashing
from console.audit.events import AUDIT_VERIFIED
from console.audit.models import AuditEntry
from console.audit.services import (
    SYSTEM,
    Outcome,
    audit_append,
    audit_chain_key_boundary,
    audit_checkpoint_issue,
    audit_verification_request,
    audit_verification_run,
)
from console.audit.verify import UNSIGNED_WARNING, audit_verify, problem_in_words
from console.roles import Role
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db(transaction=True)

type ConnectAs = Callable[[str], psycopg.Connection]

_COLUMNS = (
    "seq, occurred_at, actor_id, actor_name, actor_roles, ip, user_agent, via, action,"
    " resource_type, resource_id, change_request_id, outcome, data, personal_digest,"
    " prev_hash, hash"
)


@pytest.fixture
def app(connect_as: ConnectAs, runtime_role: str) -> psycopg.Connection:
    """The run-time login, as an attacker holding only the database password has it."""
    for i in range(1, 6):
        with transaction.atomic():
            audit_append(actor=SYSTEM, action="test.entry", data={"i": i})
    with transaction.atomic():
        audit_append(
            actor=SYSTEM,
            action="user.invited",
            personal={"email": "ann@example.com", "given_name": "Ann"},
        )
    audit_checkpoint_issue()
    return connect_as(runtime_role)


def _forge(
    conn: psycopg.Connection,
    *,
    action: str,
    data: dict[str, Any],
    outcome: str = Outcome.SUCCESS,
    key: str | None = None,
) -> int:
    """Append an entry the way the console would, hashed without the chain key (the old,
    unkeyed rule, which anyone can compute) unless `key` is given."""
    head = conn.execute(
        "SELECT seq, hash, now() FROM audit_entry ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert head is not None
    seq, prev, occurred = head[0], head[1], head[2].astimezone(UTC)
    fields: dict[str, Any] = {
        "seq": seq + 1,
        "occurred_at": occurred,
        "actor_id": None,
        "actor_name": "system",
        "actor_roles": "",
        "ip": None,
        "user_agent": "",
        "via": "",
        "action": action,
        "resource_type": "audit",
        "resource_id": "",
        "change_request_id": None,
        "outcome": outcome,
        "data": data,
        "personal_digest": "",
    }
    content = hashing.entry_content(**fields)
    new_hash = hashing.chain_hash(prev, content, key)
    conn.execute(
        f"INSERT INTO audit_entry ({_COLUMNS}) VALUES"  # noqa: S608  # fixed column list
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [*[fields[k] for k in list(fields)[:13]], json.dumps(data), "", prev, new_hash],
    )
    return int(seq + 1)


def _personal_seq() -> int:
    return AuditEntry.objects.get(action="user.invited").seq


def test_the_chain_hash_is_keyed() -> None:
    content = '["any content"]'
    plain = hashing.chain_hash(hashing.GENESIS_HASH, content, None)
    assert hashing.chain_hash(hashing.GENESIS_HASH, content, "key-one") != plain
    assert hashing.chain_hash(hashing.GENESIS_HASH, content, "key-one") != hashing.chain_hash(
        hashing.GENESIS_HASH, content, "key-two"
    )


def test_an_entry_forged_with_a_correct_unkeyed_hash_does_not_verify(
    app: psycopg.Connection,
) -> None:
    seq = _forge(app, action="change_request.approved", data={"state": "approved"})
    report = audit_verify()
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.first_bad_reason == f"seq {seq}: content does not match its stored hash"


def test_only_the_chain_key_makes_an_entry_that_verifies(app: psycopg.Connection) -> None:
    """The other side of the test above: what a holder of the key (the web, a worker) can
    do, and why docs/security.md lists that key with the processes that hold it."""
    _forge(app, action="test.entry", data={"i": 99}, key=settings.AUDIT_CHAIN_KEY)
    assert audit_verify().ok


def test_a_personal_row_replaced_with_other_data_does_not_verify(
    app: psycopg.Connection,
) -> None:
    seq = _personal_seq()
    app.execute("DELETE FROM audit_personal WHERE entry_id = %s", [seq])
    app.execute(
        "INSERT INTO audit_personal (entry_id, salt, data) VALUES (%s, %s, %s)",
        [seq, secrets.token_hex(16), json.dumps({"email": "mallory@example.com"})],
    )
    report = audit_verify()
    assert not report.ok
    assert report.first_bad_seq == seq
    assert problem_in_words(str(report.first_bad_reason)) == (
        f"The personal data beside entry #{seq} is not what was written with it "
        "— it was replaced afterwards."
    )


def test_a_personal_row_deleted_without_an_erasure_entry_does_not_verify(
    app: psycopg.Connection,
) -> None:
    seq = _personal_seq()
    app.execute("DELETE FROM audit_personal WHERE entry_id = %s", [seq])
    report = audit_verify()
    assert not report.ok
    assert report.first_bad_reason == (
        f"seq {seq}: its personal data was deleted without an erasure entry"
    )
    assert "no erasure records it" in problem_in_words(str(report.first_bad_reason))


def test_an_erasure_entry_forged_without_the_key_does_not_cover_a_deletion(
    app: psycopg.Connection,
) -> None:
    seq = _personal_seq()
    app.execute("DELETE FROM audit_personal WHERE entry_id = %s", [seq])
    forged = _forge(
        app, action="audit.personal_erased", data={"field": "email", "entries": 1, "seqs": [seq]}
    )
    problems = audit_verify().problems
    assert f"seq {forged}: content does not match its stored hash" in problems
    assert f"seq {seq}: its personal data was deleted without an erasure entry" in problems


def test_personal_data_added_beside_an_entry_that_had_none_does_not_verify(
    app: psycopg.Connection,
) -> None:
    seq = AuditEntry.objects.filter(action="test.entry").order_by("seq").first()
    assert seq is not None
    app.execute(
        "INSERT INTO audit_personal (entry_id, salt, data) VALUES (%s, %s, %s)",
        [seq.seq, "00", json.dumps({"email": "x@example.com"})],
    )
    assert audit_verify().first_bad_reason == (
        f"seq {seq.seq}: personal data is stored beside an entry that had none"
    )


def test_a_forged_verification_result_does_not_hide_a_failed_walk(
    app: psycopg.Connection, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    auditor = user_with_role(Role.AUDITOR)
    tampered = _forge(app, action="change_request.approved", data={"state": "approved"})
    with django_capture_on_commit_callbacks(execute=False):
        request, _ = audit_verification_request(actor=auditor)
    # Ahead of the walk: a success "recorded" for that very request.
    fake = _forge(
        app,
        action=AUDIT_VERIFIED,
        data={"request_seq": request.seq, "entries_checked": 9, "problems": []},
    )
    result = audit_verification_run(request_seq=request.seq, actor_id=auditor.pk)
    assert result.seq > fake
    assert result.outcome == Outcome.FAILURE
    assert result.data["first_bad_seq"] == tampered
    # The screen shows the real result first, and the forged one for what it is.
    client = Client()
    client.force_login(auditor)
    page = client.get(reverse("audit:integrity")).content.decode()
    assert f"Entry #{tampered} does not verify" in page
    assert "This result does not verify: the console did not write it" in page


def test_entries_written_before_the_chain_was_keyed_verify_by_the_old_rule(
    owner_tamper: psycopg.Connection,
) -> None:
    for i in range(1, 4):
        with transaction.atomic():
            audit_append(actor=SYSTEM, action="test.entry", data={"i": i})
    # As a trail written before this release: every hash by the unkeyed rule.
    rows = owner_tamper.execute(
        "SELECT seq, occurred_at, actor_id, actor_name, actor_roles, host(ip), user_agent, via,"
        " action, resource_type, resource_id, change_request_id, outcome, data, personal_digest"
        " FROM audit_entry ORDER BY seq"
    ).fetchall()
    prev = hashing.GENESIS_HASH
    for row in rows:
        content = hashing.entry_content(
            seq=row[0],
            occurred_at=row[1],
            actor_id=row[2],
            actor_name=row[3],
            actor_roles=row[4],
            ip=row[5],
            user_agent=row[6],
            via=row[7],
            action=row[8],
            resource_type=row[9],
            resource_id=row[10],
            change_request_id=row[11],
            outcome=row[12],
            data=row[13],
            personal_digest=row[14],
        )
        new_hash = hashing.chain_hash(prev, content, None)
        owner_tamper.execute(
            "UPDATE audit_entry SET prev_hash = %s, hash = %s WHERE seq = %s",
            [prev, new_hash, row[0]],
        )
        prev = new_hash
    assert not audit_verify().ok  # without a boundary, all of it must be keyed
    boundary = audit_chain_key_boundary()
    assert boundary is not None
    assert boundary.data["legacy_until"] == 3
    assert audit_chain_key_boundary() is None  # once
    with transaction.atomic():
        audit_append(actor=SYSTEM, action="test.entry", data={"i": 4})
    assert audit_verify().ok
    # After the boundary the old rule no longer serves a forger.
    seq = _forge(owner_tamper, action="test.entry", data={"i": 5})
    assert audit_verify().first_bad_seq == seq


def test_without_the_signers_key_only_checkpoints_in_the_signers_file_anchor(
    app: psycopg.Connection, settings: Any
) -> None:
    """The web and the workers verify without AUDIT_CHECKPOINT_KEY: a checkpoint row the
    run-time login adds (it may INSERT there) is not in the file and anchors nothing."""
    settings.AUDIT_CHECKPOINT_KEY = ""
    report = audit_verify()
    assert report.ok
    assert report.anchor_seq == 6
    assert UNSIGNED_WARNING in report.warnings
    anchored_at = report.anchor_created_at
    head = AuditEntry.objects.get(seq=6).hash
    app.execute(
        "INSERT INTO audit_checkpoint"
        " (created_at, last_seq, head_hash, entry_count, key_id, signature)"
        " VALUES (now() + interval '1 minute', 6, %s, 6, 'forged', %s)",
        [head, "0" * 64],
    )
    report = audit_verify()
    assert report.anchor_created_at == anchored_at
    assert any("in the database but not in the checkpoint file" in w for w in report.warnings)


def test_the_integrity_screen_without_the_key_says_who_checks_signatures(
    app: psycopg.Connection, settings: Any
) -> None:
    settings.AUDIT_CHECKPOINT_KEY = ""
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR))
    page = client.get(reverse("audit:integrity")).content.decode()
    assert "checked by the signer only" in page


@pytest.mark.parametrize(
    "content",
    ["", "[1]", "é ünïcode \u2028 😀", "x" * 200, '[1,"2026-01-01T00:00:00.000000+00:00"]'],
)
def test_the_keyed_chain_hash_is_hmac_sha256_under_the_derived_key(content: str) -> None:
    """The walk's hasher spells HMAC out over SHA-256 states made once: it must be the
    standard HMAC, or every entry written before would stop verifying."""
    prev = hashing.GENESIS_HASH.replace("0", "a", 7)
    derived = hashing.derived_key("key-one", "audit-chain")
    expected = hmac.new(derived, (prev + content).encode(), hashlib.sha256).hexdigest()
    assert hashing.chain_hasher("key-one")(prev, content) == expected
    assert hashing.chain_hash(prev, content, "key-one") == expected
