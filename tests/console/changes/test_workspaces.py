"""Roles and approval policies per workspace: an Editor in staging may be a Viewer in
production, and production may need two reviewers where staging needs one."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.changes.models import ApprovalPolicy, ChangeRequest, ChangeState
from console.changes.policy import approvals_required
from console.changes.services import (
    ChangeRequestError,
    approval_policy_propose,
    change_request_approve,
    change_request_propose,
)
from console.roles import (
    Capability,
    Role,
    user_capabilities,
    user_roles,
    user_workspace_roles_assign,
)
from console.workspaces import workspaces_from_env
from tests.factories import user_with_role
from tests.fixtures.workspaces import TWO_WORKSPACES, UNREACHABLE

from .conftest import FakeBraze

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_workspaces")]


def _propose(fake: FakeBraze, author: User, workspace: str) -> ChangeRequest:
    return change_request_propose(
        actor=author,
        resource_type="fake_item",
        identifier="shoe-1",
        action="update",
        payload={"price": 12},
        base_snapshot=fake.read_current("shoe-1"),
        workspace=workspace,
    )


def test_a_workspace_role_replaces_the_global_ones_in_that_workspace_only() -> None:
    person = user_with_role(Role.EDITOR)
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.VIEWER])

    assert user_roles(person) == {Role.EDITOR}
    assert user_roles(person, "staging") == {Role.EDITOR}
    assert user_roles(person, "production") == {Role.VIEWER}
    assert Capability.PROPOSE not in user_capabilities(person, "production")
    # Taking the workspace's roles away gives the global ones back there.
    user_workspace_roles_assign(user=person, workspace="production", roles=[])
    assert user_roles(person, "production") == {Role.EDITOR}


def test_someone_with_no_role_may_hold_one_in_a_single_workspace() -> None:
    person = user_with_role(None)
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.REVIEWER])

    assert user_roles(person) == frozenset()
    assert user_roles(person, "production") == {Role.REVIEWER}


def test_an_editor_in_staging_who_views_production_cannot_propose_there(
    fake_braze: FakeBraze,
) -> None:
    person = user_with_role(Role.EDITOR)
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.VIEWER])

    assert _propose(fake_braze, person, "staging").workspace == "staging"
    with pytest.raises(ChangeRequestError, match="propose capability"):
        _propose(fake_braze, person, "production")


def test_only_a_reviewer_in_the_request_s_workspace_may_approve(
    fake_braze: FakeBraze, editor: User
) -> None:
    staging_only = user_with_role(Role.REVIEWER)
    user_workspace_roles_assign(user=staging_only, workspace="production", roles=[Role.VIEWER])
    cr = _propose(fake_braze, editor, "production")

    with pytest.raises(ChangeRequestError, match="Only reviewers"):
        change_request_approve(actor=staging_only, change_request=cr)


def test_production_may_need_more_approvals_than_staging(
    fake_braze: FakeBraze, editor: User, run_on_commit: Any
) -> None:
    ApprovalPolicy.objects.create(
        workspace="production", resource_type="fake_item", action="update", required_approvals=2
    )
    assert approvals_required(resource_type="fake_item", action="update", workspace="staging") == 1
    assert (
        approvals_required(resource_type="fake_item", action="update", workspace="production") == 2
    )

    staging, production = (
        _propose(fake_braze, editor, "staging"),
        _propose(fake_braze, editor, "production"),
    )
    with run_on_commit():
        change_request_approve(actor=user_with_role(Role.REVIEWER), change_request=staging)
        change_request_approve(actor=user_with_role(Role.REVIEWER), change_request=production)
    staging.refresh_from_db()
    production.refresh_from_db()

    assert staging.state == ChangeState.APPLIED
    assert production.state == ChangeState.PENDING
    # Its entries name its workspace.
    assert set(
        AuditEntry.objects.filter(change_request_id=production.pk).values_list(
            "workspace", flat=True
        )
    ) == {"production"}


def test_a_policy_for_every_workspace_holds_until_a_workspace_sets_its_own() -> None:
    ApprovalPolicy.objects.create(
        workspace="", resource_type="fake_item", action="delete", required_approvals=3
    )
    ApprovalPolicy.objects.create(
        workspace="staging", resource_type="fake_item", action="delete", required_approvals=1
    )

    assert approvals_required(resource_type="fake_item", action="delete", workspace="staging") == 1
    assert (
        approvals_required(resource_type="fake_item", action="delete", workspace="production") == 3
    )


def test_a_policy_change_is_proposed_and_takes_effect_in_its_workspace(
    run_on_commit: Any,
) -> None:
    proposer, approver = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)

    cr = approval_policy_propose(
        actor=proposer,
        resource_type="fake_item",
        action="update",
        required_approvals=2,
        workspace="production",
    )
    with run_on_commit():
        change_request_approve(actor=approver, change_request=cr)

    assert cr.workspace == "production"
    assert (
        approvals_required(resource_type="fake_item", action="update", workspace="production") == 2
    )
    assert approvals_required(resource_type="fake_item", action="update", workspace="staging") == 1


def test_an_approved_request_of_a_workspace_taken_out_of_the_configuration_waits_unswept(
    fake_braze: FakeBraze, eager_celery: None, settings: Settings
) -> None:
    from datetime import timedelta

    from console.changes.services import change_requests_sweep
    from console.changes.tasks import change_request_apply_task

    author = user_with_role(Role.EDITOR)
    cr = _propose(fake_braze, author, "staging")
    reviewer = user_with_role(Role.REVIEWER)
    change_request_approve(actor=reviewer, change_request=cr)
    ChangeRequest.objects.filter(pk=cr.pk).update(updated_at=cr.updated_at - timedelta(minutes=5))
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {"BRAZE_WORKSPACES": "production", "BRAZE_PRODUCTION_REST_ENDPOINT": UNREACHABLE}
    )
    assert change_requests_sweep() == []
    # A message queued before the workspace went away ends without an error and sends nothing.
    change_request_apply_task(cr.pk, reviewer.pk, "staging")
    cr.refresh_from_db()
    assert (cr.state, fake_braze.sent) == (ChangeState.APPROVED, [])

    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(TWO_WORKSPACES)
    assert change_requests_sweep() == [cr.pk]
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
