"""Erasing a person reaches every place the console stored them: change requests too.

A dashboard-user change request holds the person's email and names in its payload, base
and current snapshots, diff, title, comments and review comments; its payload hash is a
digest of that payload, chained into the audit trail.
"""

import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from console.audit.hashing import canonical_json
from console.audit.models import AuditEntry
from console.audit.services import audit_personal_erase
from console.audit.verify import audit_verify
from console.changes import diff
from console.changes.erasure import MARKER, ErasureRefused
from console.changes.models import ChangeRequest, ChangeState, Decision, Review
from console.changes.services import change_request_comment, change_request_propose
from console.roles import Role
from tests.factories import user_with_role
from users_admin.identifiers import RESOURCE_TYPE

EMAIL = "zed.quimby@example.com"
GIVEN, FAMILY = "Zedekiah", "Quimbyworth"
VALUES = (EMAIL, GIVEN, FAMILY)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> User:
    return user_with_role(Role.ADMIN)


def _payload(**extra: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "given_name": GIVEN,
        "family_name": FAMILY,
        "department": "Lifecycle",
        "permissions": ["view_campaigns"],
    } | extra


def _create(admin: User) -> ChangeRequest:
    return change_request_propose(
        actor=admin,
        resource_type=RESOURCE_TYPE,
        identifier="new:0a1b2c3d4e5f6a7b",
        action="create",
        payload=_payload(),
        base_snapshot=None,
        title=f"Create dashboard user {GIVEN} {FAMILY}",
    )


def _update(admin: User) -> ChangeRequest:
    return change_request_propose(
        actor=admin,
        resource_type=RESOURCE_TYPE,
        identifier="scim-user-17",
        action="update",
        payload={
            "given_name": GIVEN,
            "family_name": FAMILY,
            "department": "CRM",
            "permissions": ["view_campaigns"],
        },
        base_snapshot=_payload(),
        title=f"Update dashboard user {GIVEN} {FAMILY}",
    )


def _close(cr: ChangeRequest, **fields: Any) -> None:
    ChangeRequest.objects.filter(pk=cr.pk).update(state=ChangeState.APPLIED, **fields)


def _where_found(value: str) -> list[str]:
    """Every text and JSON column of every table in the console's database holding the value
    (in any case)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
            " AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
            " ORDER BY table_name, column_name"
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE lower("{column}"::text) LIKE %s',  # noqa: S608  # names from the catalog
                [f"%{value.lower()}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def test_erasing_an_email_leaves_no_trace_of_the_person_in_any_table(admin: User) -> None:
    created, updated = _create(admin), _update(admin)
    _close(created, braze_response={"id": "scim-user-17"})
    _close(
        updated,
        current_snapshot=_payload(department="Growth"),
        error_message=f"Braze refused: {EMAIL} is already taken",
    )
    change_request_comment(actor=admin, change_request=created, body=f"Checked with {GIVEN}.")
    Review.objects.create(
        change_request=updated,
        reviewer=user_with_role(Role.REVIEWER),
        decision=Decision.APPROVE,
        comment=f"OK for {EMAIL}",
        payload_hash=updated.payload_hash,
    )
    for value in VALUES:
        assert _where_found(value), value  # the setup really stores each of them

    erasure = audit_personal_erase(
        actor=admin, field="email", value=EMAIL.upper(), reason="Erasure request ER-31"
    )

    assert erasure.data["change_requests"] == [created.pk, updated.pk]
    for value in VALUES:
        assert _where_found(value) == [], value
    created.refresh_from_db()
    assert created.payload["email"] == MARKER
    assert created.title == f"Create dashboard user {MARKER} {MARKER}"
    assert created.payload["department"] == "Lifecycle"  # only the person's values go
    assert {row["field"]: row["after"] for row in created.diff}["email"] == MARKER
    assert audit_verify().ok


def test_erasing_by_a_family_name_also_reaches_the_change_requests(admin: User) -> None:
    cr = _create(admin)
    _close(cr)
    audit_personal_erase(actor=admin, field="family_name", value=FAMILY, reason="ER-32")
    assert _where_found(FAMILY) == []
    assert _where_found(EMAIL) == []  # the same person's email, beside the name


def test_a_request_about_someone_else_is_left_as_it_was(admin: User) -> None:
    cr = _create(admin)
    other = change_request_propose(
        actor=admin,
        resource_type=RESOURCE_TYPE,
        identifier="new:ffffffffffffffff",
        action="create",
        payload=_payload(email="bea@example.com", given_name="Bea", family_name="Other"),
        base_snapshot=None,
        title="Create dashboard user Bea Other",
    )
    _close(cr)
    _close(other)
    audit_personal_erase(actor=admin, field="email", value=EMAIL, reason="ER-33")
    other.refresh_from_db()
    assert other.payload["email"] == "bea@example.com"
    assert other.title == "Create dashboard user Bea Other"


def test_an_open_request_about_the_person_refuses_the_erasure_and_nothing_is_erased(
    admin: User,
) -> None:
    cr = _create(admin)  # pending review
    before = AuditEntry.objects.count()
    with pytest.raises(ErasureRefused, match=rf"#{cr.pk} about this person is still open"):
        audit_personal_erase(actor=admin, field="email", value=EMAIL, reason="ER-34")
    assert AuditEntry.objects.count() == before
    assert _where_found(EMAIL)  # the audit entries' personal parts too: one transaction


def test_the_erasure_screen_says_which_request_is_still_open(admin: User) -> None:
    from django.test import Client
    from django.urls import reverse

    cr = _create(admin)
    client = Client()
    client.force_login(admin)
    response = client.post(
        reverse("audit:erasure_confirm"),
        {"field": "email", "value": EMAIL, "reason": "ER-35"},
        follow=True,
    )
    page = response.content.decode()
    assert f"Change request #{cr.pk} about this person is still open" in page
    assert EMAIL not in page


# The payload hash -------------------------------------------------------------------------


def test_the_payload_hash_is_keyed_so_a_guess_cannot_be_confirmed(admin: User) -> None:
    cr = _create(admin)
    plain = hashlib.sha256(
        canonical_json([cr.resource_type, cr.identifier, cr.action, cr.payload]).encode()
    ).hexdigest()
    assert cr.payload_hash != plain
    assert cr.payload_hash == diff.payload_hash(
        resource_type=cr.resource_type,
        identifier=cr.identifier,
        action=cr.action,
        payload=cr.payload,
    )
    chained = AuditEntry.objects.get(change_request_id=cr.pk, action="change_request.proposed")
    assert chained.data["payload_hash"] == cr.payload_hash


def test_the_payload_hash_depends_on_the_key(settings: Any) -> None:
    args: dict[str, Any] = {
        "resource_type": RESOURCE_TYPE,
        "identifier": "x",
        "action": "create",
        "payload": {"email": EMAIL},
    }
    first = diff.payload_hash(**args)
    settings.AUDIT_CHAIN_KEY = "another-key-entirely"
    assert diff.payload_hash(**args) != first


def test_an_erased_request_keeps_its_hash_and_its_approvals(admin: User) -> None:
    cr = _create(admin)
    reviewer = user_with_role(Role.REVIEWER)
    Review.objects.create(
        change_request=cr,
        reviewer=reviewer,
        decision=Decision.APPROVE,
        payload_hash=cr.payload_hash,
    )
    _close(cr)
    audit_personal_erase(actor=admin, field="email", value=EMAIL, reason="ER-36")
    erased = ChangeRequest.objects.get(pk=cr.pk)
    assert erased.payload_hash == cr.payload_hash
    assert erased.reviews.get().payload_hash == erased.payload_hash
