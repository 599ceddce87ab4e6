"""The second step of a password sign-in and the security pages (mfa/views.py), through
the whole stack: who is signed in when, what the session records, and what is refused."""

import json
import re
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.changes.models import ChangeRequest, ChangeState
from console.roles import Role, user_roles_assign, user_workspace_roles_assign
from console.sessions import SEEN_AT, SIGNED_IN_AT
from mfa import services
from mfa.flow import PENDING, SECOND_FACTOR
from mfa.identifiers import RESET_RESOURCE_TYPE
from mfa.models import PasskeyDevice
from tests.factories import TEST_PASSWORD, totp_code, totp_device_create, user_with_role

pytestmark = pytest.mark.django_db


def _password(client: Client, user: User, next_url: str = "") -> str:
    """Sign in with the password; returns where the console sends the person."""
    url = reverse("login") + (f"?next={next_url}" if next_url else "")
    response = client.post(url, {"username": user.username, "password": TEST_PASSWORD})
    assert response.status_code == 302, response.content
    return str(response["Location"])


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _other(code: str) -> str:
    return f"{(int(code) + 500_001) % 1_000_000:06d}"


def test_a_reviewer_without_a_factor_is_sent_to_enrol_before_anything_else() -> None:
    client = Client()
    reviewer = user_with_role(Role.REVIEWER)
    assert _password(client, reviewer) == reverse("mfa:enrol")
    assert not _signed_in(client)
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("mfa:verify"))["Location"] == reverse("mfa:enrol")
    page = client.get(reverse("mfa:enrol"))
    assert page.status_code == 200
    assert b"Set up a second factor" in page.content


def test_an_admin_of_one_workspace_only_needs_a_second_factor_too() -> None:
    client = Client()
    person = user_with_role(Role.VIEWER)
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.ADMIN])
    assert _password(client, person) == reverse("mfa:enrol")
    assert not _signed_in(client)


def test_enrolling_an_app_signs_in_records_the_factor_and_shows_recovery_codes_once() -> None:
    client = Client()
    admin = user_with_role(Role.ADMIN)
    _password(client, admin)
    client.get(reverse("mfa:enrol"))
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    response = client.post(reverse("mfa:enrol"), {"code": totp_code(device)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", response.content.decode())
    assert len(codes) == 10
    assert _signed_in(client)
    session = client.session
    assert session[SECOND_FACTOR]["kind"] == "totp"
    assert session[DEVICE_ID_SESSION_KEY] == TOTPDevice.objects.get(user=admin).persistent_id
    assert isinstance(session[SIGNED_IN_AT], float)
    assert PENDING not in session
    devices = client.get(reverse("mfa:devices"))
    assert b"10 unused recovery codes" in devices.content
    assert codes[0].encode() not in devices.content
    actions = set(
        AuditEntry.objects.filter(resource_id=str(admin.pk)).values_list("action", flat=True)
    )
    assert {"mfa.device_added", "mfa.recovery_codes_issued", "auth.sign_in"} <= actions


def test_a_reviewer_with_an_app_gives_a_code_before_being_signed_in(settings: Settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    client = Client()
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    assert _password(client, reviewer, next_url="/changes/") == reverse("mfa:verify")
    assert not _signed_in(client)
    wrong = client.post(reverse("mfa:verify"), {"code": _other(totp_code(device))})
    assert wrong.status_code == 400
    assert b"That code is not valid" in wrong.content
    assert not _signed_in(client)
    right = client.post(reverse("mfa:verify"), {"code": totp_code(device)})
    assert right["Location"] == "/changes/"
    assert _signed_in(client)
    assert client.session[SECOND_FACTOR]["kind"] == "totp"


def test_a_viewer_without_a_factor_signs_in_with_the_password_and_one_with_an_app_needs_it() -> (
    None
):
    viewer = user_with_role(Role.VIEWER)
    client = Client()
    assert _password(client, viewer) == reverse("home")
    assert _signed_in(client)
    assert SECOND_FACTOR not in client.session

    totp_device_create(viewer)
    client = Client()
    assert _password(client, viewer) == reverse("mfa:verify")
    assert not _signed_in(client)


def test_a_recovery_code_signs_in_once() -> None:
    reviewer = user_with_role(Role.REVIEWER)
    totp_device_create(reviewer)
    code = services.recovery_codes_issue(user=reviewer)[0]
    first = Client()
    _password(first, reviewer)
    assert first.post(reverse("mfa:verify"), {"code": code}).status_code == 302
    assert first.session[SECOND_FACTOR]["kind"] == "recovery"
    again = Client()
    _password(again, reviewer)
    assert again.post(reverse("mfa:verify"), {"code": code}).status_code == 400
    assert not _signed_in(again)


def test_after_too_many_wrong_answers_the_password_is_asked_again(settings: Settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.MFA_PENDING_MAX_FAILURES = 3
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    client = Client()
    _password(client, reviewer)
    wrong = _other(totp_code(device))
    statuses = [client.post(reverse("mfa:verify"), {"code": wrong}).status_code for _ in range(3)]
    assert statuses == [400, 400, 302]
    response = client.post(reverse("mfa:verify"), {"code": totp_code(device)})
    assert response["Location"] == reverse("login")
    assert not _signed_in(client)
    assert AuditEntry.objects.filter(action="mfa.failed", actor_id=reviewer.pk).count() == 3


def test_wrong_answers_count_against_the_address_like_failed_sign_ins(settings: Settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.SIGNIN_IP_FAILURE_LIMIT = 2
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    client = Client(REMOTE_ADDR="198.51.100.7")
    _password(client, reviewer)
    for _ in range(2):
        client.post(reverse("mfa:verify"), {"code": _other(totp_code(device))})
    refused = client.post(reverse("mfa:verify"), {"code": totp_code(device)})
    assert refused.status_code == 429
    assert not _signed_in(client)
    # The address's next password is refused too, before it is checked.
    other = Client(REMOTE_ADDR="198.51.100.7")
    response = other.post(
        reverse("login"), {"username": reviewer.username, "password": TEST_PASSWORD}
    )
    assert response.status_code == 429


def test_a_sign_in_left_unfinished_expires(settings: Settings) -> None:
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    client = Client()
    _password(client, reviewer)
    settings.MFA_PENDING_SECONDS = -1
    response = client.post(reverse("mfa:verify"), {"code": totp_code(device)})
    assert response["Location"] == reverse("login")
    assert not _signed_in(client)
    assert TOTPDevice.objects.get(pk=device.pk).last_t == -1  # the code was never tried


def test_the_second_step_refuses_a_post_without_the_csrf_token() -> None:
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("login"))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token is not None
    client.post(
        reverse("login"),
        {
            "username": reviewer.username,
            "password": TEST_PASSWORD,
            "csrfmiddlewaretoken": token.group(1).decode(),
        },
    )
    response = client.post(reverse("mfa:verify"), {"code": totp_code(device)})
    assert response.status_code == 403
    assert not _signed_in(client)


def test_the_idle_limit_still_ends_a_session_signed_in_with_a_second_factor() -> None:
    reviewer = user_with_role(Role.REVIEWER)
    device = totp_device_create(reviewer)
    client = Client()
    _password(client, reviewer)
    client.post(reverse("mfa:verify"), {"code": totp_code(device)})
    assert client.get(reverse("home")).status_code == 200
    session = client.session
    session[SEEN_AT] = time.time() - 24 * 3600
    session.save()
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))
    ended = AuditEntry.objects.get(action="auth.session_ended", actor_id=reviewer.pk)
    assert ended.data == {"reason": "idle"}


def test_a_passkey_answer_that_does_not_verify_is_refused_audited_and_counted() -> None:
    reviewer = user_with_role(Role.REVIEWER)
    PasskeyDevice.objects.create(user=reviewer, name="Key", credential_id=b"k", public_key=b"p")
    client = Client()
    assert _password(client, reviewer) == reverse("mfa:verify")
    options = json.loads(client.post(reverse("mfa:passkey_options")).content)
    assert options["rpId"] == "testserver"
    assert [c["id"] for c in options["allowCredentials"]] == ["aw"]  # b"k", base64url
    forged = json.dumps({"id": "aw", "rawId": "aw", "type": "public-key", "response": {}})
    response = client.post(reverse("mfa:passkey_signin"), {"credential": forged})
    assert response["Location"] == reverse("mfa:verify")
    assert not _signed_in(client)
    # The challenge was spent: the same answer again has none to match.
    again = client.post(reverse("mfa:passkey_signin"), {"credential": forged})
    assert again["Location"] == reverse("mfa:verify")
    failures = AuditEntry.objects.filter(action="mfa.failed", actor_id=reviewer.pk).order_by("seq")
    assert [f.data for f in failures] == [
        {"kind": "passkey", "reason": "assertion refused"},
        {"kind": "passkey", "reason": "no challenge or no answer"},
    ]
    assert client.session[PENDING]["failures"] == 2


def test_a_person_removes_their_own_app_but_not_someone_elses(client_for) -> None:
    client = client_for(Role.VIEWER)
    viewer = User.objects.get(pk=client.session["_auth_user_id"])
    mine = totp_device_create(viewer)
    theirs = totp_device_create(user_with_role(Role.VIEWER))
    url = reverse("mfa:device_remove", kwargs={"kind": "totp", "pk": theirs.pk})
    assert client.post(url).status_code == 404
    url = reverse("mfa:device_remove", kwargs={"kind": "totp", "pk": mine.pk})
    assert client.post(url)["Location"] == reverse("mfa:devices")
    assert list(TOTPDevice.objects.all()) == [theirs]


def test_an_admin_proposes_a_reset_another_approves_and_the_person_enrols_again(
    client_for, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    reviewer = user_with_role(Role.REVIEWER)
    totp_device_create(reviewer)
    proposer = client_for(Role.ADMIN)
    page = proposer.get(reverse("mfa:person", kwargs={"pk": reviewer.pk}))
    assert b"Test app" in page.content
    response = proposer.post(reverse("mfa:person", kwargs={"pk": reviewer.pk}))
    proposal = ChangeRequest.objects.get(resource_type=RESET_RESOURCE_TYPE)
    assert response["Location"] == proposal.get_absolute_url()
    assert TOTPDevice.objects.filter(user=reviewer).exists()  # nothing until approved

    approver = client_for(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        approver.post(reverse("changes:act", args=[proposal.pk]), {"op": "approve"})
    proposal.refresh_from_db()
    assert proposal.state == ChangeState.APPLIED
    assert not TOTPDevice.objects.filter(user=reviewer).exists()
    entry = AuditEntry.objects.get(action="mfa.devices_reset", resource_id=str(reviewer.pk))
    assert entry.change_request_id == proposal.pk
    assert _password(Client(), reviewer) == reverse("mfa:enrol")


def test_a_reviewer_made_from_a_viewer_enrols_at_the_next_sign_in() -> None:
    user = user_with_role(Role.VIEWER)
    client = Client()
    assert _password(client, user) == reverse("home")
    user_roles_assign(user=user, roles={Role.REVIEWER})
    assert client.get(reverse("home"))["Location"].startswith(reverse("login"))
    assert _password(client, user) == reverse("mfa:enrol")
    assert not _signed_in(client)


def test_the_second_step_pages_carry_the_crawls_security_headers_and_nonced_scripts() -> None:
    """The crawl meets these pages only without a sign-in under way (a redirect): here they
    are checked as a person half-way through signing in sees them."""
    from tests.console.test_role_crawl import _body, _header_problems

    reviewer, enrolling = user_with_role(Role.REVIEWER), user_with_role(Role.ADMIN)
    PasskeyDevice.objects.create(user=reviewer, name="Key", credential_id=b"k", public_key=b"p")
    client = Client()
    _password(client, reviewer)
    verify = client.get(reverse("mfa:verify"))
    assert 'src="/static/mfa/passkeys.js"' in _body(verify)
    assert _header_problems(verify, _body(verify), preview=False) == []
    options = client.post(reverse("mfa:passkey_options"))
    assert _header_problems(options, _body(options), preview=False) == []
    client = Client()
    _password(client, enrolling)
    enrol = client.get(reverse("mfa:enrol"))
    assert 'src="data:image/svg+xml' in _body(enrol)
    assert _header_problems(enrol, _body(enrol), preview=False) == []
