"""Second-factor services (mfa/services.py): what they accept, what they refuse, and that
each enrolment, removal, reset, recovery-code use and failure is in the audit trail."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import ChangeRequestError, change_request_approve
from console.roles import Role
from mfa import services
from mfa.models import PasskeyDevice, RecoveryCode, RecoveryCodeDevice
from tests.factories import totp_code, totp_device_create, user_with_role

pytestmark = pytest.mark.django_db


def _other(code: str) -> str:
    """A code that is not `code` (nor, but for a one in a million chance, one near it)."""
    return f"{(int(code) + 500_001) % 1_000_000:06d}"


def _entries(user: User, action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action, resource_id=str(user.pk)).order_by("seq"))


def test_a_code_from_the_app_is_accepted_once_and_its_replay_is_refused() -> None:
    user = user_with_role(Role.REVIEWER)
    device = totp_device_create(user)
    code = totp_code(device)
    assert services.second_factor_verify_code(user=user, code=code) == device
    assert services.second_factor_verify_code(user=user, code=code) is None
    [failure] = _entries(user, "mfa.failed")
    assert failure.outcome == "failure"
    assert failure.data == {"kind": "totp", "reason": "wrong or reused code"}


def test_a_wrong_code_is_refused_and_audited() -> None:
    user = user_with_role(Role.ADMIN)
    device = totp_device_create(user)
    wrong = _other(totp_code(device))
    assert services.second_factor_verify_code(user=user, code=wrong) is None
    assert len(_entries(user, "mfa.failed")) == 1


def test_after_a_wrong_code_even_the_right_one_waits_for_the_back_off() -> None:
    user = user_with_role(Role.REVIEWER)
    device = totp_device_create(user)
    right = totp_code(device)
    wrong = _other(right)
    services.second_factor_verify_code(user=user, code=wrong)
    assert services.second_factor_verify_code(user=user, code=right) is None
    assert _entries(user, "mfa.failed")[-1].data["reason"] == "throttled"


def test_another_persons_code_is_refused() -> None:
    user, other = user_with_role(Role.REVIEWER), user_with_role(Role.REVIEWER)
    totp_device_create(user)
    assert (
        services.second_factor_verify_code(user=user, code=totp_code(totp_device_create(other)))
        is None
    )


def test_recovery_codes_are_kept_hashed_and_each_works_once() -> None:
    user = user_with_role(Role.REVIEWER)
    totp_device_create(user)
    codes = services.recovery_codes_issue(user=user)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    stored = list(RecoveryCode.objects.values_list("digest", flat=True))
    assert not any(code.replace("-", "") in digest for code in codes for digest in stored)

    device = services.second_factor_verify_code(user=user, code=codes[3].upper())
    assert isinstance(device, RecoveryCodeDevice)
    assert services.second_factor_verify_code(user=user, code=codes[3]) is None
    [used] = _entries(user, "mfa.recovery_code_used")
    assert used.data == {"left": 9}
    assert _entries(user, "mfa.failed")[-1].data["kind"] == "recovery"


def test_new_recovery_codes_replace_the_old_ones() -> None:
    user = user_with_role(Role.VIEWER)
    old = services.recovery_codes_issue(user=user)
    new = services.recovery_codes_issue(user=user)
    assert services.second_factor_verify_code(user=user, code=old[0]) is None
    assert services.second_factor_verify_code(user=user, code=new[0]) is not None
    assert len(_entries(user, "mfa.recovery_codes_issued")) == 2


def test_an_app_is_enrolled_only_with_a_code_it_shows(settings: Settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no back-off between the two attempts
    user = user_with_role(Role.EDITOR)
    device = services.totp_device_start(user=user)
    assert services.totp_device_start(user=user) == device  # the same key until confirmed
    assert services.totp_device_confirm(user=user, token=_other(totp_code(device))) is None
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    assert services.totp_device_confirm(user=user, token=totp_code(device)) == device
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    [added] = _entries(user, "mfa.device_added")
    assert added.data == {"kind": "totp", "name": "Authenticator app"}
    assert _entries(user, "mfa.failed")[0].data["reason"] == "enrolment code refused"


def test_a_reviewer_may_not_remove_their_last_factor_but_a_viewer_may() -> None:
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    with pytest.raises(services.SecondFactorError, match="before removing"):
        services.device_remove(actor=reviewer, device=device)
    assert TOTPDevice.objects.filter(pk=device.pk).exists()

    second = totp_device_create(reviewer, name="Spare phone")
    services.device_remove(actor=reviewer, device=second)
    [removed] = _entries(reviewer, "mfa.device_removed")
    assert removed.data == {"kind": "totp", "name": "Spare phone"}

    viewer = user_with_role(Role.VIEWER)
    services.device_remove(actor=viewer, device=totp_device_create(viewer))
    assert not TOTPDevice.objects.filter(user=viewer).exists()


def test_a_reset_is_proposed_by_one_admin_and_applied_once_another_approves(
    eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    ada, alan, reviewer = (
        user_with_role(Role.ADMIN),
        user_with_role(Role.ADMIN),
        user_with_role(Role.REVIEWER),
    )
    totp_device_create(reviewer, name="Phone")
    services.recovery_codes_issue(user=reviewer)
    PasskeyDevice.objects.create(user=reviewer, name="Key", credential_id=b"k", public_key=b"p")
    proposal = services.devices_reset_propose(actor=ada, user=reviewer)
    assert proposal.base_snapshot == {
        "factors": ["Authenticator app: Phone", "Passkey: Key", "Recovery codes: 10 unused"]
    }
    assert TOTPDevice.objects.filter(user=reviewer).exists()
    with pytest.raises(ChangeRequestError):
        change_request_approve(actor=ada, change_request=proposal)  # not one's own
    with pytest.raises(ChangeRequestError):
        change_request_approve(actor=reviewer, change_request=proposal)  # nor a Reviewer

    with django_capture_on_commit_callbacks(execute=True):
        change_request_approve(actor=alan, change_request=proposal)
    proposal.refresh_from_db()
    assert proposal.state == ChangeState.APPLIED, proposal.error_message
    assert not TOTPDevice.objects.filter(user=reviewer).exists()
    assert not PasskeyDevice.objects.filter(user=reviewer).exists()
    assert not RecoveryCode.objects.filter(device__user=reviewer).exists()
    [entry] = _entries(reviewer, "mfa.devices_reset")
    assert entry.actor_id == alan.pk
    assert entry.change_request_id == proposal.pk
    assert entry.data == {
        "removed": {"totp": 1, "passkey": 1, "recovery": 1},
        "proposed_by": ada.pk,
    }


def test_a_factor_enrolled_after_the_proposal_makes_the_reset_a_conflict(
    eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    ada, alan, reviewer = (
        user_with_role(Role.ADMIN),
        user_with_role(Role.ADMIN),
        user_with_role(Role.REVIEWER),
    )
    totp_device_create(reviewer, name="Phone")
    proposal = services.devices_reset_propose(actor=ada, user=reviewer)
    totp_device_create(reviewer, name="New phone")
    with django_capture_on_commit_callbacks(execute=True):
        change_request_approve(actor=alan, change_request=proposal)
    proposal.refresh_from_db()
    assert proposal.state == ChangeState.CONFLICT
    assert TOTPDevice.objects.filter(user=reviewer).count() == 2


def test_a_reset_is_refused_for_oneself_and_for_someone_without_a_factor() -> None:
    admin, viewer = user_with_role(Role.ADMIN), user_with_role(Role.VIEWER)
    totp_device_create(admin)
    with pytest.raises(services.SecondFactorError, match="your own"):
        services.devices_reset_propose(actor=admin, user=admin)
    with pytest.raises(services.SecondFactorError, match="no second factor"):
        services.devices_reset_propose(actor=admin, user=viewer)
    assert not ChangeRequest.objects.exists()
