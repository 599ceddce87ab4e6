"""Maker-checker on people: one Admin alone cannot make themselves a second pair of eyes.

Grants of Reviewer or Admin are change requests (`console_role`) another Admin approves,
and an account may not approve the changes of whoever created it or last changed its roles.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.audit.models import AuditEntry
from console.changes.models import AccountSponsor, ChangeRequest, ChangeState, SponsorReason
from console.changes.selectors import change_requests_awaiting_review
from console.changes.services import (
    FourEyesViolation,
    change_request_approve,
    change_request_propose,
    change_request_reject,
)
from console.roles import Role, user_roles
from tests.factories import user_with_role
from users_admin import services
from users_admin.identifiers import RESOURCE_TYPE, ROLES_RESOURCE_TYPE

pytestmark = pytest.mark.django_db

COMPANY_ADMIN_FOR_ME = {
    "email": "ada.admin@example.com",
    "given_name": "Ada",
    "family_name": "Admin",
    "department": "marketing",
    "company_permissions": ["admin"],
    "workspace_permissions": "",
}


def _roles(user: User) -> set[Role]:
    user.refresh_from_db()
    if hasattr(user, "_console_roles"):
        del user._console_roles
    return set(user_roles(user))


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _invite(client: Client, username: str, roles: list[str]) -> User:
    response = client.post(
        reverse("users_admin:user_create"),
        {
            "username": username,
            "first_name": "Sock",
            "last_name": "Puppet",
            "email": f"{username}@example.com",
            "roles": roles,
        },
    )
    assert response.status_code == 302
    return User.objects.get(username=username)


def _approve(client: Client, cr: ChangeRequest) -> str:
    response = client.post(reverse("changes:act", args=[cr.pk]), {"op": "approve"}, follow=True)
    return response.content.decode()


def test_an_admin_alone_cannot_make_a_second_account_approve_their_own_proposal(
    run_on_commit: Callable[..., Any],
) -> None:
    """The scenario of the review: invite an account one controls, make it a Reviewer (or
    an Admin), and approve one's own proposal of Braze company-admin rights with it."""
    ada = user_with_role(Role.ADMIN, username="ada")
    ada_web = _client(ada)
    with run_on_commit():
        sock = _invite(ada_web, "sock", ["Reviewer"])
    # The invitation gave no Reviewer role: that is a request another Admin must approve.
    assert _roles(sock) == set()
    grant = ChangeRequest.objects.get(resource_type=ROLES_RESOURCE_TYPE)
    assert grant.state == ChangeState.PENDING
    assert "someone else must review it" in _approve(ada_web, grant)
    # The sock account has no role that may even open it.
    sock_web = _client(sock)
    assert (
        sock_web.post(reverse("changes:act", args=[grant.pk]), {"op": "approve"}).status_code == 403
    )
    grant.refresh_from_db()
    assert grant.state == ChangeState.PENDING
    assert _roles(sock) == set()

    # Ada proposes company-admin rights in Braze for herself.
    ada_web.post(reverse("users_admin:dashboard_user_create"), COMPANY_ADMIN_FOR_ME)
    proposal = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    # A Reviewer account, even one another Admin approved, neither sees nor approves it.
    reviewer = _client(user_with_role(Role.REVIEWER))
    assert (
        reviewer.post(reverse("changes:act", args=[proposal.pk]), {"op": "approve"}).status_code
        == 404
    )

    # Now suppose an honest second Admin approves making the sock account an Admin.
    colleague = user_with_role(Role.ADMIN, username="colleague")
    with run_on_commit():
        services.user_set_roles(actor=ada, user=sock, roles={Role.ADMIN})
        change_request_approve(
            actor=colleague,
            change_request=ChangeRequest.objects.get(
                resource_type=ROLES_RESOURCE_TYPE,
                state=ChangeState.PENDING,
                payload={"roles": ["Admin"]},
            ),
        )
    assert _roles(sock) == {Role.ADMIN}
    # Still: Ada created the account, so it cannot be the second pair of eyes on her change.
    page = _approve(_client(sock), proposal)
    assert "ada created your account, so you cannot approve their changes" in page
    proposal.refresh_from_db()
    assert proposal.state == ChangeState.PENDING
    assert not proposal.reviews.exists()
    refused = AuditEntry.objects.filter(
        change_request_id=proposal.pk, action="change_request.approve_refused"
    )
    assert refused.count() == 1


def test_granting_reviewer_waits_for_another_admin_and_records_who_asked(
    run_on_commit: Callable[..., Any],
) -> None:
    ada, colleague = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    user = user_with_role(Role.EDITOR)
    cr = services.user_set_roles(actor=ada, user=user, roles={Role.EDITOR, Role.REVIEWER})
    assert cr is not None
    assert cr.resource_type == ROLES_RESOURCE_TYPE
    assert _roles(user) == {Role.EDITOR}
    # Reviewers review content, not people.
    with pytest.raises(FourEyesViolation, match="Only another Admin"):
        change_request_approve(actor=user_with_role(Role.REVIEWER), change_request=cr)
    with run_on_commit():
        change_request_approve(actor=colleague, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert _roles(user) == {Role.EDITOR, Role.REVIEWER}
    entry = AuditEntry.objects.get(action="user.roles_changed")
    assert (entry.actor_id, entry.change_request_id) == (colleague.pk, cr.pk)
    assert entry.data["added"] == ["Reviewer"]
    assert entry.data["proposed_by"] == ada.pk
    # Applied in the console's database: nothing went to Braze.
    assert not AuditEntry.objects.filter(action="braze.write").exists()
    assert set(AccountSponsor.objects.filter(user=user).values_list("sponsor_id", "reason")) == {
        (ada.pk, SponsorReason.ROLES)
    }


def test_an_admin_may_not_approve_a_grant_to_themselves() -> None:
    ada, colleague = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    cr = services.user_set_roles(actor=ada, user=colleague, roles={Role.ADMIN, Role.REVIEWER})
    assert cr is not None
    with pytest.raises(FourEyesViolation, match="about your own account"):
        change_request_approve(actor=colleague, change_request=cr)
    assert change_request_awaiting(colleague) == []


def change_request_awaiting(user: User) -> list[int]:
    return list(change_requests_awaiting_review(user=user).values_list("pk", flat=True))


@pytest.mark.parametrize("grant", [Role.VIEWER, Role.EDITOR, Role.AUDITOR])
def test_lesser_roles_and_removals_take_effect_at_once(grant: Role) -> None:
    ada = user_with_role(Role.ADMIN)
    user = user_with_role(Role.REVIEWER)
    assert services.user_set_roles(actor=ada, user=user, roles={grant}) is None
    assert _roles(user) == {grant}
    assert not ChangeRequest.objects.exists()


def test_whoever_last_changed_a_reviewers_roles_cannot_be_approved_by_them(
    fake_content: str,
) -> None:
    ada = user_with_role(Role.ADMIN)
    services.user_set_roles(actor=ada, user=ada, roles={Role.ADMIN, Role.EDITOR})
    reviewer, other = user_with_role(Role.REVIEWER), user_with_role(Role.REVIEWER)
    assert (
        services.user_set_roles(actor=ada, user=reviewer, roles={Role.REVIEWER, Role.VIEWER})
        is None
    )
    cr = change_request_propose(
        actor=ada,
        resource_type=fake_content,
        identifier="shoe-1",
        action="update",
        payload={"price": 12},
        base_snapshot={"price": 10},
    )
    assert change_request_awaiting(reviewer) == []
    assert change_request_awaiting(other) == [cr.pk]
    with pytest.raises(FourEyesViolation, match="last changed your roles"):
        change_request_approve(actor=reviewer, change_request=cr)
    # Saying no is still possible: it lets nothing through.
    change_request_reject(actor=reviewer, change_request=cr, comment="Not like this")
    cr.refresh_from_db()
    assert cr.state == ChangeState.REJECTED


def test_an_invitation_with_reviewer_gives_the_other_roles_now_and_proposes_the_rest() -> None:
    ada = user_with_role(Role.ADMIN)
    user = services.user_create(
        actor=ada,
        username="nina",
        email="nina@example.com",
        first_name="Nina",
        last_name="North",
        roles={Role.EDITOR, Role.REVIEWER},
        base_url="http://console.test/",
    )
    assert _roles(user) == {Role.EDITOR}
    cr = ChangeRequest.objects.get(resource_type=ROLES_RESOURCE_TYPE)
    assert (cr.identifier, cr.base_snapshot, cr.payload) == (
        str(user.pk),
        {"roles": ["Editor"]},
        {"roles": ["Editor", "Reviewer"]},
    )
    assert AuditEntry.objects.get(action="user.invited").data == {"roles": ["Editor"]}
    assert AccountSponsor.objects.get(user=user).reason == SponsorReason.CREATED


def test_a_grant_whose_user_changed_meanwhile_is_a_conflict_not_an_overwrite(
    run_on_commit: Callable[..., Any],
) -> None:
    ada, colleague = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    user = user_with_role(Role.EDITOR)
    cr = services.user_set_roles(actor=ada, user=user, roles={Role.EDITOR, Role.REVIEWER})
    assert cr is not None
    services.user_set_roles(actor=ada, user=user, roles=set())  # Editor removed meanwhile
    with run_on_commit():
        change_request_approve(actor=colleague, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.CONFLICT
    assert _roles(user) == set()


def test_a_policy_change_waits_for_another_admin(run_on_commit: Callable[..., Any]) -> None:
    from console.changes.policy import approvals_required

    ada = user_with_role(Role.ADMIN)
    ada_web = _client(ada)
    ada_web.post(
        reverse("changes:policy"),
        {"resource_type": RESOURCE_TYPE, "action": "update", "required_approvals": 2},
    )
    cr = ChangeRequest.objects.get(resource_type="approval_policy")
    assert approvals_required(resource_type=RESOURCE_TYPE, action="update") == 1
    assert "someone else must review it" in _approve(ada_web, cr)
    with run_on_commit():
        _approve(_client(user_with_role(Role.ADMIN)), cr)
    assert approvals_required(resource_type=RESOURCE_TYPE, action="update") == 2


@pytest.fixture
def fake_content() -> Iterator[str]:
    from tests.console.changes.conftest import FakeBraze, registered

    with registered("fake_item", FakeBraze()):
        yield "fake_item"


def test_accounts_made_before_sponsors_were_recorded_get_them_from_the_audit_trail() -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("console.migrations.0005_account_sponsors")
    ada, bob = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    user = services.user_create(
        actor=ada,
        username="old",
        email="old@example.com",
        first_name="Old",
        last_name="Timer",
        roles={Role.VIEWER},
        base_url="http://console.test/",
    )
    services.user_set_roles(actor=ada, user=user, roles={Role.EDITOR})
    services.user_set_roles(actor=bob, user=user, roles={Role.AUDITOR})
    AccountSponsor.objects.all().delete()  # as before the migration

    migration.sponsors_from_audit(apps, None)
    assert set(AccountSponsor.objects.values_list("user_id", "sponsor_id", "reason")) == {
        (user.pk, ada.pk, SponsorReason.CREATED),
        (user.pk, bob.pk, SponsorReason.ROLES),
    }
