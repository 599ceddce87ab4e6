import threading

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from console.audit import hashing
from console.audit.models import AuditEntry, AuditPersonal
from console.audit.services import (
    REDACTED,
    SystemActor,
    audit_append,
    audit_personal_erase,
)
from console.audit.verify import audit_verify
from tests.factories import TEST_PASSWORD, UserFactory


def test_it_chains_each_entry_to_the_previous_one(db: None, editor: User) -> None:
    first = audit_append(actor=editor, action="test.one")
    second = audit_append(actor=editor, action="test.two", data={"n": 2})
    assert second.seq == first.seq + 1
    assert second.prev_hash == first.hash
    assert audit_verify().ok


def test_it_records_the_actor_with_roles(db: None, editor: User) -> None:
    entry = audit_append(actor=editor, action="test.actor")
    assert entry.actor_id == editor.pk
    assert entry.actor_name == editor.username
    assert entry.actor_roles == "Editor"


def test_the_database_refuses_an_entry_without_actor(db: None) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        audit_append(actor=SystemActor(""), action="test.nobody")


def test_it_masks_secret_fields_and_configured_secrets(db: None, editor: User, settings) -> None:
    settings.BRAZE_API_KEY = "brz-canary-0123456789"
    entry = audit_append(
        actor=editor,
        action="test.secret",
        data={"api_key": "abc", "nested": {"Password": "x"}, "note": "key brz-canary-0123456789"},
    )
    entry.refresh_from_db()
    assert entry.data == {
        "api_key": REDACTED,
        "nested": {"Password": REDACTED},
        "note": f"key {REDACTED}",
    }


def test_personal_data_can_be_erased_and_the_chain_still_verifies(db: None, editor: User) -> None:
    entry = audit_append(
        actor=editor, action="dashboard_user.invited", personal={"email": "ann@example.com"}
    )
    assert AuditPersonal.objects.get(entry=entry).data == {"email": "ann@example.com"}
    assert "ann@example.com" not in str(entry.data)
    erasure = audit_personal_erase(
        actor=editor, field="email", value="ann@example.com", reason="Request 17"
    )
    assert erasure.data["entries"] == 1
    assert not AuditPersonal.objects.filter(entry=entry).exists()
    assert audit_verify().ok


def test_sign_in_sign_out_and_failed_sign_in_are_audited(db: None) -> None:
    user = UserFactory(username="signer")
    client = Client(REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="pytest-agent")
    client.post(reverse("login"), {"username": "signer", "password": "wrong"})
    client.post(reverse("login"), {"username": "signer", "password": TEST_PASSWORD})
    client.post(reverse("logout"))
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", "actor_name", "ip"))
    assert actions == [
        ("auth.sign_in_failed", "anonymous", "10.1.2.3"),
        ("auth.sign_in", user.username, "10.1.2.3"),
        ("auth.sign_out", user.username, "10.1.2.3"),
    ]
    failed = AuditEntry.objects.get(action="auth.sign_in_failed")
    assert failed.user_agent == "pytest-agent"
    assert AuditPersonal.objects.get(entry=failed).data == {"username": "signer"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain() -> None:
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    audit_append(
                        actor=SystemActor(f"thread-{n}"), action="test.concurrent", data={"i": i}
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT prev_hash), max(seq) FROM audit_entry")
        count, distinct_prev, max_seq = cursor.fetchone()
    assert count == distinct_prev == max_seq == threads * per_thread
    report = audit_verify()
    assert report.ok, report.problems
    assert AuditEntry.objects.get(seq=1).prev_hash == hashing.GENESIS_HASH
