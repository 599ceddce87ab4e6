"""The audit integrity screen: signed checkpoints, and verifying the chain on demand."""

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console.audit import hashing
from console.audit.checkpoints import checkpoint_file_path
from console.audit.events import AUDIT_VERIFIED, AUDIT_VERIFY_REQUESTED
from console.audit.models import AuditCheckpoint, AuditEntry
from console.audit.selectors import VERIFY_STALE_AFTER
from console.audit.services import (
    SYSTEM,
    audit_append,
    audit_checkpoint_issue,
    audit_checkpoint_sign_due,
    audit_verification_request,
    audit_verification_run,
)
from console.audit.tasks import audit_verify_task
from console.roles import Role
from tests.factories import user_with_role

URL = "audit:integrity"
type Capture = Callable[..., Any]


def _signed_in(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def _entries(n: int) -> None:
    for i in range(1, n + 1):
        with transaction.atomic():
            audit_append(actor=SYSTEM, action="test.entry", data={"i": i})


def _status(client: Client) -> str:
    """The verification panel as the page's htmx poll fetches it."""
    response = client.get(
        reverse(URL), headers={"HX-Request": "true", "HX-Target": "verify-status"}
    )
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def auditor(db: None) -> User:
    return user_with_role(Role.AUDITOR)


@pytest.fixture
def admin(db: None) -> User:
    return user_with_role(Role.ADMIN)


# The checkpoint list ---------------------------------------------------------------------


def test_it_lists_checkpoints_with_their_file_copy_and_signature_checks(
    auditor: User, settings: Any
) -> None:
    _entries(3)
    checkpoint = audit_checkpoint_issue()
    page = _signed_in(auditor).get(reverse(URL)).content.decode()
    assert f"<code>{checkpoint.head_hash[:12]}…</code>" in page
    assert f"<code>{checkpoint.head_hash}</code>" in page  # the full value, behind <details>
    assert checkpoint.key_id in page
    assert ">matches<" in page
    assert ">verifies<" in page
    assert reverse("audit:detail", args=[3]) in page
    # The key is named by its public id only.
    assert settings.AUDIT_CHECKPOINT_KEY not in page


def test_a_checkpoint_whose_file_copy_was_changed_shows_as_differing(auditor: User) -> None:
    checkpoint = audit_checkpoint_issue()
    path = checkpoint_file_path()
    record = json.loads(path.read_text())
    record["head_hash"] = "f" * 64
    path.write_text(hashing.canonical_json(record) + "\n")
    page = _signed_in(auditor).get(reverse(URL)).content.decode()
    assert ">differs<" in page
    assert ">verifies<" in page  # the database row itself is intact
    assert checkpoint.key_id in page


def test_a_checkpoint_missing_from_the_file_or_forged_in_the_database_shows(
    auditor: User,
) -> None:
    audit_checkpoint_issue()
    checkpoint_file_path().unlink()
    # INSERT is all the run-time role may do on this table: a forged row, unsigned.
    AuditCheckpoint.objects.create(
        created_at=timezone.now(),
        last_seq=0,
        head_hash=hashing.GENESIS_HASH,
        entry_count=0,
        key_id=AuditCheckpoint.objects.get().key_id,
        signature="0" * 64,
    )
    page = _signed_in(auditor).get(reverse(URL)).content.decode()
    assert page.count(">missing<") == 2
    assert ">does not verify<" in page
    assert ">verifies<" in page


def test_a_checkpoint_signed_with_a_rotated_key_is_not_judged(auditor: User, settings: Any) -> None:
    audit_checkpoint_issue()
    settings.AUDIT_CHECKPOINT_KEY = "a-new-key-after-rotation"
    page = _signed_in(auditor).get(reverse(URL)).content.decode()
    assert ">another key<" in page


def test_the_checkpoint_list_sorts_and_pages_in_the_shared_table_shape(auditor: User) -> None:
    for _ in range(30):
        audit_checkpoint_issue()
    client = _signed_in(auditor)
    first = client.get(reverse(URL)).content.decode()
    assert "1–25 of 30" in first
    assert 'aria-sort="descending"' in first
    second = client.get(
        reverse(URL),
        {"sort": "id", "page": "2"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    ).content.decode()
    assert second.lstrip().startswith('<div id="results">')  # the partial only
    assert "26–30 of 30" in second
    assert 'aria-sort="ascending"' in second


# Asking for a verification -----------------------------------------------------------------


def test_the_verify_button_is_a_csrf_protected_post(auditor: User) -> None:
    client = _signed_in(auditor, enforce_csrf_checks=True)
    assert client.get(reverse("audit:integrity_verify")).status_code == 405
    assert client.post(reverse("audit:integrity_verify")).status_code == 403
    assert not AuditEntry.objects.filter(action=AUDIT_VERIFY_REQUESTED).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.REVIEWER])
def test_only_auditors_and_admins_may_ask_for_a_verification(db: None, role: Role) -> None:
    response = _signed_in(user_with_role(role)).post(reverse("audit:integrity_verify"))
    assert response.status_code == 403
    assert not AuditEntry.objects.filter(action=AUDIT_VERIFY_REQUESTED).exists()


def test_asking_enqueues_the_walk_on_commit_with_ids_only(
    auditor: User,
    django_capture_on_commit_callbacks: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _entries(4)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(audit_verify_task, "delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks() as callbacks:
        response = _signed_in(auditor).post(reverse("audit:integrity_verify"))
        assert sent == []  # nothing leaves before the request's transaction commits
    assert response.status_code == 303
    request = AuditEntry.objects.get(action=AUDIT_VERIFY_REQUESTED)
    assert request.actor_name == auditor.username
    for callback in callbacks:
        callback()
    assert sent == [(request.seq, auditor.pk)]


def test_the_task_records_the_outcome_as_an_entry_by_whoever_asked(
    auditor: User, django_capture_on_commit_callbacks: Capture, eager_celery: None
) -> None:
    _entries(12)
    audit_checkpoint_issue()
    with django_capture_on_commit_callbacks(execute=True):
        _signed_in(auditor).post(reverse("audit:integrity_verify"), headers={"HX-Request": "true"})
    result = AuditEntry.objects.get(action=AUDIT_VERIFIED)
    request = AuditEntry.objects.get(action=AUDIT_VERIFY_REQUESTED)
    assert (result.actor_id, result.actor_name) == (auditor.pk, auditor.username)
    assert result.actor_roles == "Auditor"
    assert result.via == "celery:audit_verify"
    assert result.outcome == "success"
    assert result.data["request_seq"] == request.seq
    # Every entry before the result: the twelve, the sign-in and the request itself.
    assert result.data["entries_checked"] == result.seq - 1 == 14
    assert result.data["checkpoints_checked"] == 1
    assert result.data["anchor_seq"] == 12
    assert result.data["first_bad_seq"] is None
    assert isinstance(result.data["duration_ms"], int)
    panel = _status(_signed_in(auditor))
    assert "All 14 entries verify up to the checkpoint at entry #12, signed" in panel


def test_the_page_polls_while_the_verification_is_pending_and_stops_when_it_ends(
    auditor: User, django_capture_on_commit_callbacks: Capture
) -> None:
    _entries(2)
    client = _signed_in(auditor)
    with django_capture_on_commit_callbacks():
        answer = client.post(reverse("audit:integrity_verify"), headers={"HX-Request": "true"})
    # The POST answers with the panel itself, already polling.
    assert 'id="verify-status"' in answer.content.decode()
    assert 'hx-trigger="every 2s"' in answer.content.decode()
    pending = _status(client)
    assert 'hx-trigger="every 2s"' in pending
    assert "Running" in pending
    assert "Verify the chain now" not in pending
    request = AuditEntry.objects.get(action=AUDIT_VERIFY_REQUESTED)
    result = audit_verification_run(request_seq=request.seq, actor_id=auditor.pk)
    done = _status(client)
    assert "hx-trigger" not in done
    assert "Verify the chain now" in done
    assert f"All {result.seq - 1} entries verify" in done


def test_asking_again_while_one_is_pending_queues_no_second_walk(
    auditor: User, admin: User, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        first, queued = audit_verification_request(actor=auditor)
        assert queued
    with django_capture_on_commit_callbacks() as again:
        second, queued_again = audit_verification_request(actor=admin)
    assert (second.seq, queued_again) == (first.seq, False)
    assert (len(callbacks), len(again)) == (1, 0)
    response = _signed_in(admin).post(reverse("audit:integrity_verify"), follow=True)
    assert "already queued or running" in response.content.decode()


def test_a_redelivered_task_records_one_result(auditor: User) -> None:
    request, _ = audit_verification_request(actor=auditor)
    first = audit_verification_run(request_seq=request.seq, actor_id=auditor.pk)
    second = audit_verification_run(request_seq=request.seq, actor_id=auditor.pk)
    assert first.seq == second.seq
    assert AuditEntry.objects.filter(action=AUDIT_VERIFIED).count() == 1


def test_a_walk_that_stops_is_recorded_as_failed_in_words(
    auditor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.audit import verify

    def broken() -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(verify, "audit_verify", broken)
    request, _ = audit_verification_request(actor=auditor)
    result = audit_verification_run(request_seq=request.seq, actor_id=auditor.pk)
    assert result.outcome == "failure"
    panel = _status(_signed_in(auditor))
    assert "The verification could not finish" in panel
    assert "disk gone" not in result.data["error"]  # only the kind of error is recorded


def test_a_request_nobody_answered_is_reported_as_stalled(
    auditor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    request, _ = audit_verification_request(actor=auditor)
    later = request.occurred_at + VERIFY_STALE_AFTER + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    panel = _status(_signed_in(auditor))
    assert "hx-trigger" not in panel
    assert f"(entry #{request.seq}) never finished" in panel
    assert "Verify the chain now" in panel


# Tampering, recorded in words ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_tampered_row_makes_the_recorded_verification_fail_at_that_entry(
    owner_tamper: psycopg.Connection, eager_celery: None
) -> None:
    auditor = user_with_role(Role.AUDITOR)
    _entries(20)
    audit_checkpoint_issue()
    owner_tamper.execute("""UPDATE audit_entry SET data = '{"i": 999}' WHERE seq = 7""")
    client = _signed_in(auditor)
    client.post(reverse("audit:integrity_verify"))  # the task runs when the request commits
    result = AuditEntry.objects.get(action=AUDIT_VERIFIED)
    assert result.outcome == "failure"
    assert result.data["first_bad_seq"] == 7
    assert result.data["reason"] == "seq 7: content does not match its stored hash"
    page = client.get(reverse(URL)).content.decode()
    assert (
        "Entry #7 does not verify: its hash does not match its content "
        "— it was changed after it was written."
    ) in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("tamper", "first_bad", "words"),
    [
        # The request entry then takes seq 16, so the trail ends at 16 and 17 is the
        # first entry the checkpoint (at 20) misses.
        (
            "DELETE FROM audit_entry WHERE seq > 15",
            17,
            "Entries after #16 are missing: a checkpoint signed at",
        ),
        (
            "DELETE FROM audit_entry WHERE seq BETWEEN 9 AND 10",
            9,
            "Entries #9 to #10 are missing: they were deleted from the middle of the trail.",
        ),
    ],
)
def test_removed_entries_are_recorded_in_words(
    owner_tamper: psycopg.Connection, tamper: str, first_bad: int, words: str
) -> None:
    auditor = user_with_role(Role.AUDITOR)
    _entries(20)
    audit_checkpoint_issue()
    owner_tamper.execute(tamper)
    request, _ = audit_verification_request(actor=auditor)
    result = audit_verification_run(request_seq=request.seq, actor_id=auditor.pk)
    assert (result.outcome, result.data["first_bad_seq"]) == ("failure", first_bad)
    assert words in _status(_signed_in(auditor))


# Issuing a checkpoint on demand ----------------------------------------------------------------


def test_admins_can_have_a_checkpoint_signed_now(
    admin: User, django_capture_on_commit_callbacks: Capture, settings: Any
) -> None:
    client = _signed_in(admin)
    assert "Issue a checkpoint now" in client.get(reverse(URL)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("audit:checkpoint_issue"))
    assert response.status_code == 303
    # The web signs nothing: the signer's next turn does, though its interval is not up.
    assert AuditCheckpoint.objects.count() == 0
    key, interval = settings.AUDIT_CHECKPOINT_KEY, 3600.0
    assert audit_checkpoint_sign_due(
        key=key, last_signed=time.monotonic(), interval_seconds=interval
    )
    assert AuditCheckpoint.objects.count() == 1
    assert not audit_checkpoint_sign_due(
        key=key, last_signed=time.monotonic(), interval_seconds=interval
    )


def test_auditors_do_not_get_the_checkpoint_button(auditor: User) -> None:
    client = _signed_in(auditor)
    assert "Issue a checkpoint now" not in client.get(reverse(URL)).content.decode()
    assert client.post(reverse("audit:checkpoint_issue")).status_code == 403


# Reaching the screen -----------------------------------------------------------------------------


def test_the_audit_list_links_to_the_integrity_screen(auditor: User) -> None:
    page = _signed_in(auditor).get(reverse("audit:list")).content.decode()
    assert f'href="{reverse(URL)}"' in page
    assert f'href="{reverse("audit:erasure")}"' not in page  # Admins only
