from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail

from console.audit.models import AuditEntry
from console.braze.errors import BrazeServerError, BrazeTimeout, BrazeValidationError
from console.changes.models import ApprovalPolicy, ChangeRequest, ChangeState
from console.changes.policy import approvals_required
from console.changes.services import (
    ChangeRequestError,
    FourEyesViolation,
    InvalidTransition,
    approval_policy_propose,
    change_request_approve,
    change_request_cancel,
    change_request_comment,
    change_request_edit,
    change_request_propose,
    change_request_reject,
    change_request_retry,
)
from console.roles import Role
from tests.factories import user_with_role

from .conftest import FakeBraze, reregister


def _propose(
    fake: FakeBraze, author: User, payload: dict[str, Any] | None = None, **kw: Any
) -> ChangeRequest:
    return change_request_propose(
        actor=author,
        resource_type=kw.pop("resource_type", "fake_item"),
        identifier="shoe-1",
        action=kw.pop("action", "update"),
        payload=payload or {"price": 12},
        base_snapshot=fake.read_current("shoe-1"),
        **kw,
    )


def _events(cr: ChangeRequest) -> list[str]:
    return list(
        AuditEntry.objects.filter(change_request_id=cr.pk)
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_it_records_the_proposal_with_base_snapshot_and_field_diff(
    db: None, fake_braze: FakeBraze, editor: User
) -> None:
    cr = _propose(fake_braze, editor)
    assert cr.state == ChangeState.PENDING
    assert cr.base_snapshot == {"id": "shoe-1", "name": "Shoe", "price": 10}
    assert cr.diff == [{"field": "price", "before": 10, "after": 12, "change": "changed"}]
    assert _events(cr) == ["change_request.proposed"]


def test_it_refuses_self_approval_and_audits_the_attempt(db: None, fake_braze: FakeBraze) -> None:
    # Someone holding both roles is still only one pair of eyes.
    both = user_with_role(Role.EDITOR)
    both.groups.add(*user_with_role(Role.REVIEWER).groups.all())
    cr = _propose(fake_braze, both)
    with pytest.raises(FourEyesViolation):
        change_request_approve(actor=both, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING
    refused = AuditEntry.objects.get(action="change_request.approve_refused")
    assert refused.outcome == "refused"


def test_admins_get_no_bypass(db: None, fake_braze: FakeBraze, editor: User) -> None:
    admin = user_with_role(Role.ADMIN, is_superuser=True, is_staff=True)
    cr = _propose(fake_braze, editor)
    with pytest.raises(FourEyesViolation):
        change_request_approve(actor=admin, change_request=cr)


def test_whoever_last_changed_the_payload_cannot_approve_it(
    db: None, fake_braze: FakeBraze, editor: User
) -> None:
    editor_reviewer = user_with_role(Role.REVIEWER)
    editor_reviewer.groups.add(*user_with_role(Role.EDITOR).groups.all())
    cr = _propose(fake_braze, editor)
    change_request_edit(actor=editor_reviewer, change_request=cr, payload={"price": 13})
    with pytest.raises(FourEyesViolation, match="last changed"):
        change_request_approve(actor=editor_reviewer, change_request=cr)


def test_an_approval_applies_the_change_once_after_commit(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert cr.braze_response == {"message": "success"}
    assert fake_braze.sent == [("update", "shoe-1", {"price": 12})]
    assert _events(cr) == [
        "change_request.proposed",
        "change_request.approved",
        "change_request.applying",
        "braze.write",
        "change_request.applied",
    ]
    # The worker's entries carry the reviewer who asked, not a nameless system.
    write = AuditEntry.objects.get(action="braze.write")
    assert (write.actor_id, write.via) == (reviewer.pk, "celery:change_request_apply")


def test_a_replayed_approval_counts_once(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    ApprovalPolicy.objects.create(resource_type="fake_item", action="update", required_approvals=2)
    cr = _propose(fake_braze, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING
    assert cr.reviews.count() == 1


def test_stale_approvals_are_dismissed_on_edit_but_not_on_comment(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    ApprovalPolicy.objects.create(resource_type="fake_item", action="update", required_approvals=2)
    cr = _propose(fake_braze, editor)
    change_request_approve(actor=reviewer, change_request=cr)
    change_request_comment(actor=editor, change_request=cr, body="Thanks!")
    assert cr.reviews.filter(dismissed_at__isnull=True).count() == 1
    change_request_edit(actor=editor, change_request=cr, payload={"price": 14})
    assert cr.reviews.filter(dismissed_at__isnull=True).count() == 0
    second = user_with_role(Role.REVIEWER)
    change_request_approve(actor=second, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING  # the first approval no longer counts


def test_deleting_a_catalog_needs_two_distinct_approvers(
    db: None, fake_braze: FakeBraze, editor: User
) -> None:
    assert approvals_required(resource_type="catalog", action="delete") == 2
    assert approvals_required(resource_type="catalog_item", action="update") == 1


def test_policy_changes_are_audited_admin_only_and_approved_by_another_admin(
    db: None, editor: User, run_on_commit: Any
) -> None:
    with pytest.raises(ChangeRequestError):
        approval_policy_propose(
            actor=editor, resource_type="x", action="update", required_approvals=3
        )
    admin, other_admin = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    cr = approval_policy_propose(
        actor=admin, resource_type="x", action="update", required_approvals=3
    )
    assert approvals_required(resource_type="x", action="update") == 1  # not yet
    with pytest.raises(FourEyesViolation):
        change_request_approve(actor=admin, change_request=cr)
    with run_on_commit():
        change_request_approve(actor=other_admin, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert approvals_required(resource_type="x", action="update") == 3
    entry = AuditEntry.objects.get(action="policy.changed")
    assert entry.data == {"before": 1, "after": 3, "proposed_by": admin.pk}
    assert entry.change_request_id == cr.pk
    assert not AuditEntry.objects.filter(action="braze.write").exists()
    with pytest.raises(ChangeRequestError):
        approval_policy_propose(
            actor=admin, resource_type="x", action="update", required_approvals=0
        )


def test_rejecting_requires_a_comment(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _propose(fake_braze, editor)
    with pytest.raises(ChangeRequestError, match="comment"):
        change_request_reject(actor=reviewer, change_request=cr, comment="  ")
    change_request_reject(actor=reviewer, change_request=cr, comment="Price is wrong")
    cr.refresh_from_db()
    assert cr.state == ChangeState.REJECTED


def test_the_resources_closed_hook_hears_of_a_rejection_and_a_withdrawal_after_commit(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    heard: list[tuple[int, str]] = []
    reregister(
        "fake_item",
        on_close=lambda *, change_request_id, actor: heard.append(
            (change_request_id, actor.username)
        ),
    )
    rejected, withdrawn = _propose(fake_braze, editor), _propose(fake_braze, editor)
    with run_on_commit() as callbacks:
        change_request_reject(actor=reviewer, change_request=rejected, comment="No")
        assert heard == []  # not before the decision has committed
    assert callbacks
    with run_on_commit():
        change_request_cancel(actor=editor, change_request=withdrawn)
    assert heard == [(rejected.pk, reviewer.username), (withdrawn.pk, editor.username)]


def test_a_failing_closed_hook_does_not_undo_the_rejection(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def closed(*, change_request_id: int, actor: User) -> None:
        raise RuntimeError("the resource's database is away")

    reregister("fake_item", on_close=closed)
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_reject(actor=reviewer, change_request=cr, comment="No")
    cr.refresh_from_db()
    assert cr.state == ChangeState.REJECTED
    assert f"change request #{cr.pk} failed" in caplog.text


def test_it_goes_to_conflict_when_braze_changed_after_the_proposal(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(fake_braze, editor)
    fake_braze.store["shoe-1"]["name"] = "Renamed in the dashboard"
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.CONFLICT
    assert cr.current_snapshot is not None
    assert cr.current_snapshot["name"] == "Renamed in the dashboard"
    assert fake_braze.sent == []


def test_a_failed_apply_retried_succeeds_exactly_once(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    fake_braze.fail_next.append(
        BrazeServerError("Internal error", operation="catalog_item_edit", status=500)
    )
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert "HTTP 500" in cr.error_message
    with run_on_commit():
        change_request_retry(actor=editor, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert fake_braze.sent == [("update", "shoe-1", {"price": 12})]
    with pytest.raises(InvalidTransition):
        change_request_retry(actor=editor, change_request=cr)


def test_a_retry_after_braze_accepted_sends_nothing_again(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    fake_braze.land_then_fail = True
    fake_braze.fail_next.append(BrazeTimeout("read timeout", operation="catalog_item_edit"))
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    with run_on_commit():
        change_request_retry(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert len(fake_braze.sent) == 1
    assert cr.braze_response is not None
    assert "nothing was sent" in cr.braze_response["note"]


def test_braze_errors_are_shown_in_plain_words_with_their_id(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    from console.braze.errors import BrazeErrorDetail

    fake_braze.fail_next.append(
        BrazeValidationError(
            "bad",
            operation="catalog_item_edit",
            status=400,
            errors=(BrazeErrorDetail(id="invalid-fields", message="Some fields are invalid"),),
        )
    )
    cr = _propose(fake_braze, editor)
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert cr.error_id == "invalid-fields"
    assert "invalid-fields" in cr.error_message


def test_a_withdrawn_change_is_never_applied(
    db: None,
    fake_braze: FakeBraze,
    editor: User,
    reviewer: User,
    django_capture_on_commit_callbacks: Any,
    eager_celery: None,
) -> None:
    cr = _propose(fake_braze, editor)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change_request_approve(actor=reviewer, change_request=cr)
    change_request_cancel(actor=editor, change_request=cr)
    for callback in callbacks:
        callback()
    cr.refresh_from_db()
    assert cr.state == ChangeState.CANCELLED
    assert fake_braze.sent == []


def test_reviewers_are_emailed_when_a_change_awaits_review(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    with run_on_commit():
        _propose(fake_braze, editor)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].bcc == [reviewer.email]
    assert editor.email not in mail.outbox[0].bcc


def test_only_editors_can_propose(db: None, fake_braze: FakeBraze, reviewer: User) -> None:
    with pytest.raises(ChangeRequestError):
        _propose(fake_braze, reviewer)


def test_the_sweeper_applies_an_approved_request_whose_task_was_lost(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, eager_celery: None
) -> None:
    from datetime import timedelta

    from console.changes.services import change_requests_sweep

    cr = _propose(fake_braze, editor)
    change_request_approve(actor=reviewer, change_request=cr)  # on_commit never runs here
    ChangeRequest.objects.filter(pk=cr.pk).update(
        updated_at=cr.updated_at - timedelta(minutes=5)
    )  # an old approval, as if the web process died before enqueueing
    assert change_requests_sweep() == [cr.pk]
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert change_requests_sweep() == []
    assert len(fake_braze.sent) == 1


def test_no_code_moves_change_requests_around_the_audited_services() -> None:
    """`.update()` and bulk writes skip the audit trail: only services.py may use them."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(r"ChangeRequest\.objects\.[^\n]*\.(update|bulk_update|bulk_create)\(")
    offenders = [
        str(path.relative_to(root))
        for folder in ("console", "catalogs", "templates_app", "users_admin")
        for path in (root / folder).rglob("*.py")
        if "migrations" not in path.parts and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_a_conflict_is_resolved_by_rebasing_and_a_fresh_approval(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(fake_braze, editor)
    fake_braze.store["shoe-1"]["name"] = "Renamed"
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.CONFLICT
    change_request_edit(
        actor=editor,
        change_request=cr,
        payload=cr.payload,
        base_snapshot=cr.current_snapshot,
        rebase=True,
    )
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING
    assert cr.reviews.filter(dismissed_at__isnull=True).count() == 0
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert fake_braze.store["shoe-1"] == {"id": "shoe-1", "name": "Renamed", "price": 12}


def test_personal_fields_stay_out_of_the_chain_and_can_be_erased(
    db: None, fake_braze: FakeBraze, editor: User
) -> None:
    from console.audit.models import AuditPersonal
    from console.audit.services import audit_personal_erase
    from console.audit.verify import audit_verify

    reregister("fake_item", personal_fields=frozenset({"email"}))
    fake_braze.store["shoe-1"]["email"] = "old@example.com"
    cr = _propose(fake_braze, editor, {"email": "new@example.com", "price": 12})
    entry = AuditEntry.objects.get(change_request_id=cr.pk, action="change_request.proposed")
    assert "example.com" not in str(entry.data)
    assert {"field": "email", "personal": True} in entry.data["diff"]
    assert any(row["field"] == "price" for row in entry.data["diff"])
    assert AuditPersonal.objects.get(entry=entry).data["email"] == "new@example.com"

    change_request_cancel(actor=editor, change_request=cr)  # an open request blocks erasure
    erasure = audit_personal_erase(
        actor=editor, field="email", value="new@example.com", reason="Request 17"
    )
    assert erasure.data["entries"] == 1
    assert not AuditPersonal.objects.filter(entry=entry).exists()
    assert audit_verify().ok
