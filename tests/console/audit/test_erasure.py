"""Erasing a person's data from the audit trail on request (Admins only)."""

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from console.audit import hashing
from console.audit.events import AUDIT_PERSONAL_ERASED, AUDIT_PERSONAL_LOOKED_UP
from console.audit.models import AuditEntry, AuditPersonal
from console.audit.services import (
    SYSTEM,
    audit_append,
    audit_personal_erase,
)
from console.audit.verify import audit_verify
from console.roles import Role
from tests.factories import user_with_role

EMAIL = "ann@example.com"
FORM = "audit:erasure"
CONFIRM = "audit:erasure_confirm"


def _signed_in(user: User, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def admin(db: None) -> User:
    return user_with_role(Role.ADMIN)


@pytest.fixture
def ann_entries(db: None) -> list[AuditEntry]:
    """Entries holding Ann's email the ways the console records it, and one about Bob."""
    return [
        audit_append(
            actor=SYSTEM,
            action="user.invited",
            personal={"username": "ann", "email": EMAIL, "given_name": "Zebulonia"},
        ),
        # A change request moves a diff row's values into the erasable part.
        audit_append(
            actor=SYSTEM,
            action="change_request.proposed",
            data={"diff": [{"field": "email", "personal": True}]},
            personal={"diff": [{"field": "email", "before": "old@example.com", "after": EMAIL}]},
        ),
        audit_append(
            actor=SYSTEM,
            action="dashboard_user.updated",
            personal={"payload": {"email": "Ann@Example.COM"}},
        ),
        audit_append(actor=SYSTEM, action="user.invited", personal={"email": "bob@example.com"}),
    ]


def _erase(client: Client, **fields: str) -> HttpResponse:
    data = {"field": "email", "value": EMAIL, "reason": "Erasure request ER-17"} | fields
    return cast(HttpResponse, client.post(reverse(CONFIRM), data))


def _streamed(response: HttpResponseBase) -> str:
    chunks = cast(Iterator[bytes], cast(StreamingHttpResponse, response).streaming_content)
    return b"".join(chunks).decode()


# Who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.REVIEWER, Role.EDITOR, Role.VIEWER])
def test_only_admins_may_preview_or_erase(ann_entries: list[AuditEntry], role: Role) -> None:
    client = _signed_in(user_with_role(role))
    assert client.post(reverse(FORM), {"field": "email", "value": EMAIL}).status_code == 403
    assert _erase(client).status_code == 403
    assert AuditPersonal.objects.count() == 4


def test_the_erase_step_is_a_csrf_protected_post(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    client = _signed_in(admin, enforce_csrf_checks=True)
    assert client.get(reverse(CONFIRM)).status_code == 405
    assert _erase(client).status_code == 403
    assert AuditPersonal.objects.count() == 4


def test_admins_reach_it_from_the_audit_list(admin: User) -> None:
    page = _signed_in(admin).get(reverse("audit:list")).content.decode()
    assert f'href="{reverse(FORM)}"' in page
    assert f'href="{reverse("audit:integrity")}"' in page


# The preview -------------------------------------------------------------------------------


def test_the_preview_counts_the_entries_and_shows_no_other_personal_data(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    response = _signed_in(admin).post(
        reverse(FORM), {"field": "email", "value": EMAIL, "reason": "ER-17"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    # Exact, any case, and inside a diff row: three of Ann's entries, not Bob's.
    assert "3 audit entries hold this email address" in page
    for entry in ann_entries[:3]:
        assert reverse("audit:detail", args=[entry.seq]) in page
    assert reverse("audit:detail", args=[ann_entries[3].seq]) not in page
    assert "Zebulonia" not in page
    assert "old@example.com" not in page
    assert "Erase it from 3 entries" in page
    assert AuditPersonal.objects.count() == 4  # a preview erases nothing


def test_the_lookup_is_recorded_by_who_looked_with_a_digest_never_the_value(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    _signed_in(admin).post(reverse(FORM), {"field": "email", "value": EMAIL, "reason": "ER-17"})
    entry = AuditEntry.objects.get(action=AUDIT_PERSONAL_LOOKED_UP)
    assert (entry.actor_name, entry.data["field"], entry.data["entries"]) == (
        admin.username,
        "email",
        3,
    )
    assert entry.data["value_digest"]
    assert EMAIL.lower() not in json.dumps(entry.data).lower()
    assert not AuditPersonal.objects.filter(pk=entry.seq).exists()


def test_a_value_that_appears_nowhere_says_so_and_offers_no_erasure(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    page = (
        _signed_in(admin)
        .post(reverse(FORM), {"field": "email", "value": "nobody@example.com", "reason": "ER-1"})
        .content.decode()
    )
    assert "No audit entry holds this email address: there is nothing to erase." in page
    assert reverse(CONFIRM) not in page


def test_erasing_a_username_warns_that_actor_names_stay(admin: User) -> None:
    audit_append(actor=SYSTEM, action="auth.sign_in_failed", personal={"username": admin.username})
    page = (
        _signed_in(admin)
        .post(reverse(FORM), {"field": "username", "value": admin.username, "reason": "ER-2"})
        .content.decode()
    )
    assert "1 audit entry holds this username" in page
    # Signing in (force_login) made the admin the actor of one entry.
    assert "This user is also the actor of 1 entry." in page


# Bad input ---------------------------------------------------------------------------------


def test_erasing_requires_a_reason_and_keeps_what_was_typed(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    response = _erase(_signed_in(admin), reason="  ")
    page = response.content.decode()
    assert response.status_code == 400
    assert "Give the reason for the erasure; it is recorded." in page
    assert f'value="{EMAIL}"' in page
    assert AuditPersonal.objects.count() == 4
    assert not AuditEntry.objects.filter(action=AUDIT_PERSONAL_ERASED).exists()


def test_a_reason_that_repeats_the_value_is_refused(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    response = _erase(_signed_in(admin), reason=f"Ann asked by mail from {EMAIL.upper()}")
    assert response.status_code == 400
    assert "Leave the value out of the reason" in response.content.decode()
    assert AuditPersonal.objects.count() == 4
    with pytest.raises(ValueError, match="reason"):
        audit_personal_erase(actor=admin, field="email", value=EMAIL, reason=f"from {EMAIL}")


def test_a_kind_the_trail_does_not_keep_is_refused(admin: User) -> None:
    response = _signed_in(admin).post(
        reverse(FORM), {"field": "data", "value": "x", "reason": "ER-3"}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    with pytest.raises(ValueError, match="not a kind of personal data"):
        audit_personal_erase(actor=admin, field="data__x", value="x", reason="ER-3")


# Erasing -----------------------------------------------------------------------------------


def test_erasing_removes_the_value_and_the_chain_still_verifies(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    client = _signed_in(admin)
    response = _erase(client)
    assert response.status_code == 303
    kept = AuditPersonal.objects.get()
    assert kept.entry_id == ann_entries[3].seq  # Bob's
    assert audit_verify().ok
    followed = client.get(response["Location"]).content.decode()
    assert "Erased the email address from 3 audit entries; every entry still verifies." in followed
    assert EMAIL not in followed


def test_detail_pages_say_when_personal_data_was_erased(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    client = _signed_in(admin)
    detail = reverse("audit:detail", args=[ann_entries[0].seq])
    assert EMAIL in client.get(detail).content.decode()
    _erase(client)
    erasure = AuditEntry.objects.get(action=AUDIT_PERSONAL_ERASED)
    page = client.get(detail).content.decode()
    assert EMAIL not in page
    assert "Zebulonia" not in page
    assert f"personal data erased on {erasure.occurred_at:%Y-%m-%d}" in page
    assert reverse("audit:detail", args=[erasure.seq]) in page


def test_the_erasure_is_audited_with_its_reason_and_a_keyed_digest_only(
    admin: User, ann_entries: list[AuditEntry], settings: Any
) -> None:
    _erase(_signed_in(admin))
    erasure = AuditEntry.objects.get(action=AUDIT_PERSONAL_ERASED)
    assert erasure.actor_name == admin.username
    assert erasure.data["field"] == "email"
    assert erasure.data["entries"] == 3
    assert erasure.data["seqs"] == [e.seq for e in ann_entries[:3]]
    assert erasure.data["reason"] == "Erasure request ER-17"
    key = settings.AUDIT_CHAIN_KEY
    assert erasure.data["value_digest"] == hashing.erased_value_digest(key, "email", EMAIL)
    assert not AuditPersonal.objects.filter(entry=erasure).exists()
    # Nowhere in the trail, in any case.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_entry WHERE lower(data::text) LIKE %s", [f"%{EMAIL}%"]
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exports_after_an_erasure_hold_the_value_nowhere(
    admin: User, ann_entries: list[AuditEntry], fmt: str
) -> None:
    client = _signed_in(admin)
    _erase(client)
    exported = _streamed(client.post(reverse("audit:export"), {"format": fmt}))
    assert "audit.personal_erased" in exported  # the erasure entry is exported too
    assert "ann@example.com" not in exported.lower()
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(exported)))
        assert len(rows) == AuditEntry.objects.count()  # header + all but the export's own
    else:
        lines = [json.loads(line) for line in exported.splitlines()]
        assert any(line["action"] == AUDIT_PERSONAL_ERASED for line in lines)


def test_erasing_a_value_that_appears_nowhere_says_so(
    admin: User, ann_entries: list[AuditEntry]
) -> None:
    client = _signed_in(admin)
    response = _erase(client, value="nobody@example.com")
    page = client.get(response["Location"]).content.decode()
    assert "No audit entry held this email address: nothing was erased." in page
    assert AuditPersonal.objects.count() == 4
    assert AuditEntry.objects.get(action=AUDIT_PERSONAL_ERASED).data["entries"] == 0
