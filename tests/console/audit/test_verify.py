"""`verify_audit` finds an altered row, a removed tail, a gap and a rewritten suffix."""

import json
import os
from collections.abc import Callable

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction

from console.audit import hashing, verify
from console.audit.services import SYSTEM, audit_append, audit_checkpoint_issue
from console.audit.verify import audit_verify, problem_in_words

pytestmark = pytest.mark.django_db(transaction=True)

type ConnectAs = Callable[[str], psycopg.Connection]


@pytest.fixture
def chain() -> None:
    for i in range(1, 21):
        with transaction.atomic():
            audit_append(actor=SYSTEM, action="test.entry", data={"i": i})
    audit_checkpoint_issue()


def _verify_fails(match: str) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("verify_audit")


def test_an_intact_trail_verifies(chain: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("verify_audit")
    assert "audit trail verifies: 20 entries" in capsys.readouterr().out


def test_an_altered_row_is_named(chain: None, owner_tamper: psycopg.Connection) -> None:
    owner_tamper.execute("""UPDATE audit_entry SET data = '{"i": 999}' WHERE seq = 7""")
    _verify_fails("first bad entry: seq 7")


def test_deleting_the_newest_entries_is_caught_by_the_checkpoint(
    chain: None, owner_tamper: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_tamper.execute("DELETE FROM audit_entry WHERE seq > 15")
    _verify_fails("first bad entry: seq 16")
    assert "removed from the tail" in capsys.readouterr().err


def test_deleting_a_middle_entry_is_reported_as_a_gap(
    chain: None, owner_tamper: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_tamper.execute("DELETE FROM audit_entry WHERE seq = 10")
    _verify_fails("first bad entry: seq 10")
    assert "entries 10..10 are missing" in capsys.readouterr().err


def test_a_consistently_rewritten_suffix_fails_at_the_checkpoint(
    chain: None, owner_tamper: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    # The attacker recomputes every hash from seq 12 on, so the chain alone is consistent:
    # one holding the chain key too (a compromised worker), not the signer's key.
    rows = owner_tamper.execute(
        "SELECT seq, occurred_at, actor_id, actor_name, actor_roles, host(ip), user_agent, via,"
        " action, resource_type, resource_id, change_request_id, outcome, data, personal_digest,"
        " prev_hash FROM audit_entry WHERE seq >= 12 ORDER BY seq"
    ).fetchall()
    prev = rows[0][15]
    for row in rows:
        data = {"i": -row[0]}
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
            data=data,
            personal_digest=row[14],
        )
        new_hash = hashing.chain_hash(prev, content, settings.AUDIT_CHAIN_KEY)
        owner_tamper.execute(
            "UPDATE audit_entry SET data = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            [json.dumps(data), prev, new_hash, row[0]],
        )
        prev = new_hash
    _verify_fails("first bad entry: seq 20")
    assert "seq 20 does not match the signed checkpoint" in capsys.readouterr().err
    words = problem_in_words(str(audit_verify().first_bad_reason))
    assert words.startswith("Entry #20 does not match the checkpoint signed at ")
    assert words.endswith("the trail was rewritten up to there and its hashes recomputed.")


def test_a_forged_checkpoint_row_fails_its_signature(
    chain: None, connect_as: ConnectAs, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = connect_as("superuser")
    conn.execute("ALTER TABLE audit_checkpoint DISABLE TRIGGER USER")
    try:
        conn.execute("UPDATE audit_checkpoint SET last_seq = 5, entry_count = 5")
    finally:
        conn.execute(
            "ALTER TABLE audit_checkpoint ENABLE ALWAYS TRIGGER audit_checkpoint_refuse_rows"
        )
    # The file copy outside the database still holds the genuine checkpoint.
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert "bad signature" in capsys.readouterr().err
    words = [problem_in_words(p) for p in audit_verify().problems]
    assert any(
        w.startswith("The checkpoint of ")
        and "(entry #5) does not verify with the signing key" in w
        for w in words
    ), words


def test_checkpoints_are_written_even_when_nothing_happened(db: None, settings) -> None:
    first = audit_checkpoint_issue()
    second = audit_checkpoint_issue()
    assert (first.last_seq, second.last_seq) == (0, 0)
    lines = (settings.AUDIT_CHECKPOINT_DIR / "checkpoints.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["signature"] == second.signature


def test_the_parallel_walk_finds_the_same_breaks(
    chain: None, owner_tamper: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.audit import verify

    monkeypatch.setattr(verify, "_PARALLEL_FROM", 5)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert len(verify._ranges()) == 3
    assert verify.audit_verify().ok
    owner_tamper.execute("""UPDATE audit_entry SET data = '{"i": 999}' WHERE seq = 9""")
    owner_tamper.execute("DELETE FROM audit_entry WHERE seq = 15")
    report = verify.audit_verify()
    assert report.first_bad_seq == 9
    assert any("entries 15..15 are missing" in p for p in report.problems)


def _verify_in_worker() -> verify.VerifyReport:
    return verify.audit_verify()


def test_the_parallel_walk_also_runs_in_a_celery_worker_process(
    chain: None, owner_tamper: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import billiard
    from django.db import connections

    monkeypatch.setattr(verify, "_PARALLEL_FROM", 5)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    owner_tamper.execute("""UPDATE audit_entry SET data = '{"i": 999}' WHERE seq = 9""")
    connections.close_all()  # the forked worker opens its own
    # Celery's prefork pool: daemon processes, which the standard library forbids children.
    with billiard.get_context("fork").Pool(1) as pool:
        report = pool.apply(_verify_in_worker)
    assert report.first_bad_seq == 9
    assert report.entries == 20


def test_it_warns_when_no_checkpoint_was_issued_for_too_long(
    chain: None, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from console.audit import verify

    later = timezone.now() + timedelta(minutes=3 * settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES)
    monkeypatch.setattr(timezone, "now", lambda: later)
    report = verify.audit_verify()
    assert report.ok
    assert any(w.startswith("unanchored since") for w in report.warnings)


def test_an_entry_that_does_not_link_to_the_one_before_reads_in_words(
    chain: None, owner_tamper: psycopg.Connection
) -> None:
    owner_tamper.execute("UPDATE audit_entry SET prev_hash = repeat('a', 64) WHERE seq = 11")
    report = audit_verify()
    assert report.first_bad_seq == 11
    assert problem_in_words(str(report.first_bad_reason)) == (
        "Entry #11 does not verify: it does not link to entry #10 before it "
        "— entries were replaced or inserted."
    )


def test_a_message_without_words_is_shown_as_it_is() -> None:
    assert problem_in_words("something new went wrong") == "Something new went wrong."
