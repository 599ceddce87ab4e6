"""Roles per workspace: a person's roles in one workspace are a change request of that
workspace, proposed by one Admin there and approved by another, and reviewers are chosen
(and their queues counted) by the roles they hold in the request's workspace."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from console.audit.models import AuditEntry
from console.audit.sentences import audit_sentence
from console.changes.models import ApprovalPolicy, ChangeRequest, ChangeState
from console.changes.selectors import change_requests_awaiting_review, review_count_for
from console.changes.services import (
    FourEyesViolation,
    change_request_apply,
    change_request_approve,
    change_request_propose,
)
from console.role_models import WorkspaceRole
from console.roles import Role, forget_cached_roles, user_roles, user_workspace_roles_assign
from console.workspace_urls import workspace_reverse
from tests.factories import user_with_role
from users_admin import services
from users_admin.identifiers import WORKSPACE_ROLES_RESOURCE_TYPE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_workspaces")]


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _roles_url(user: User, workspace: str) -> str:
    return workspace_reverse(
        "users_admin:user_workspace_roles", workspace=workspace, args=[user.pk]
    )


def _roles_in(user: User, workspace: str | None = None) -> set[Role]:
    forget_cached_roles(user)
    return set(user_roles(user, workspace))


def _propose_content(editor: User, workspace: str) -> ChangeRequest:
    return change_request_propose(
        actor=editor,
        resource_type="catalog_item",
        identifier="products/item-1",
        action="update",
        payload={"price": 2},
        base_snapshot={"price": 1},
        title=f"Cheaper item in {workspace}",
        workspace=workspace,
    )


def _row(table: str, workspace: str) -> str:
    row = table[table.index(f'data-workspace="{workspace}"') :]
    return row[: row.index("</tr>")]


# --- the screen ---------------------------------------------------------------------------


def test_the_person_page_has_a_role_table_per_workspace_with_production_and_policy_shown() -> None:
    admin = user_with_role(Role.ADMIN)
    person = user_with_role(Role.EDITOR)
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.VIEWER])
    ApprovalPolicy.objects.create(
        workspace="production",
        resource_type=WORKSPACE_ROLES_RESOURCE_TYPE,
        action="update",
        required_approvals=2,
    )
    url = workspace_reverse("users_admin:user_detail", workspace="staging", args=[person.pk])
    page = _client(admin).get(url).content.decode()

    table = page[page.index("data-workspace-roles-table") :]
    staging, production = (_row(table, key) for key in ("staging", "production"))
    assert "Editor" in staging
    assert "Same as the console-wide roles" in staging
    assert "Production</span>" in production
    assert "data-production" in production
    assert "data-production" not in staging
    assert "Viewer" in production
    assert "This workspace only" in production
    assert "Production: role changes need 2 approvals" in production
    assert "Staging: role changes need 1 approval" in staging
    # Each row's form is opened in its own workspace.
    assert f'href="{_roles_url(person, "production")}"' in production


def test_the_form_is_labelled_and_an_empty_choice_of_own_roles_is_refused_with_a_reason() -> None:
    admin = user_with_role(Role.ADMIN)
    person = user_with_role(Role.EDITOR)
    web = _client(admin)
    page = web.get(_roles_url(person, "production")).content.decode()
    assert "<legend>Roles in this workspace</legend>" in page
    assert "<legend>Roles of this workspace</legend>" in page
    assert 'for="id_scope_0"' in page
    assert 'for="id_roles_0"' in page
    assert "csrfmiddlewaretoken" in page

    response = web.post(_roles_url(person, "production"), {"scope": "workspace"})
    assert response.status_code == 400
    assert "Choose at least one role" in response.content.decode()
    assert not ChangeRequest.objects.exists()


# --- who may use it ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [*Role, None], ids=[*(r.value for r in Role), "no-role"])
def test_only_admins_may_open_and_post_the_workspace_roles_form(role: Role | None) -> None:
    person = user_with_role(Role.EDITOR)
    web = _client(user_with_role(role))
    url = _roles_url(person, "production")
    get = web.get(url)
    post = web.post(url, {"scope": "workspace", "roles": ["Viewer"]})
    if role == Role.ADMIN:
        assert (get.status_code, post.status_code) == (200, 302)
        assert ChangeRequest.objects.get().workspace == "production"
    else:
        assert (get.status_code, post.status_code) == (403, 403)
        assert not ChangeRequest.objects.exists()


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_a_role_held_in_production_only_manages_roles_in_production_only(role: Role) -> None:
    person = user_with_role(Role.EDITOR)
    actor = user_with_role(None)
    user_workspace_roles_assign(user=actor, workspace="production", roles=[role])
    web = _client(actor)
    form = {"scope": "workspace", "roles": ["Viewer"]}

    in_production = web.post(_roles_url(person, "production"), form)
    in_staging = web.post(_roles_url(person, "staging"), form)

    assert in_staging.status_code == 403
    if role == Role.ADMIN:
        assert in_production.status_code == 302
        assert list(ChangeRequest.objects.values_list("workspace", flat=True)) == ["production"]
    else:
        assert in_production.status_code == 403
        assert not ChangeRequest.objects.exists()


# --- the change request ------------------------------------------------------------------


def test_a_production_role_is_proposed_approved_by_another_admin_and_applied_there_only(
    run_on_commit: Callable[..., Any],
) -> None:
    ada, bob = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    person = user_with_role(Role.VIEWER)
    ada_web, bob_web = _client(ada), _client(bob)

    response = ada_web.post(
        _roles_url(person, "production"), {"scope": "workspace", "roles": ["Editor"]}
    )
    cr = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(
        workspace_reverse("changes:detail", workspace="production", args=[cr.pk])
    )
    assert (cr.resource_type, cr.workspace, cr.state) == (
        WORKSPACE_ROLES_RESOURCE_TYPE,
        "production",
        ChangeState.PENDING,
    )
    assert cr.base_snapshot == {"same_as_console_wide": True, "roles": []}
    assert cr.payload == {"same_as_console_wide": False, "roles": ["Editor"]}
    assert _roles_in(person, "production") == {Role.VIEWER}

    # The review page says which workspace and the roles before and after.
    detail = workspace_reverse("changes:detail", workspace="production", args=[cr.pk])
    page = bob_web.get(detail).content.decode()
    assert "Workspace: Production (production), a production workspace." in page
    assert "Before: the same as their console-wide roles (Viewer)." in page
    assert "After: Editor, in this workspace only." in page

    act = workspace_reverse("changes:act", workspace="production", args=[cr.pk])
    refused = ada_web.post(act, {"op": "approve"}, follow=True).content.decode()
    assert "someone else must review it" in refused
    with run_on_commit():
        bob_web.post(act, {"op": "approve"})
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message

    assert _roles_in(person, "production") == {Role.EDITOR}
    assert _roles_in(person, "staging") == {Role.VIEWER}
    assert _roles_in(person) == {Role.VIEWER}
    entry = AuditEntry.objects.get(action="user.workspace_roles_changed")
    assert (entry.actor_id, entry.change_request_id, entry.workspace) == (
        bob.pk,
        cr.pk,
        "production",
    )
    assert entry.data["workspace"] == "production"
    assert entry.data["before"] == {"same_as_console_wide": True, "roles": []}
    assert entry.data["after"] == {"same_as_console_wide": False, "roles": ["Editor"]}
    assert entry.data["proposed_by"] == ada.pk
    sentence = audit_sentence(entry).text
    assert sentence.endswith(
        f"changed the roles of console user #{person.pk} in workspace Production (production)"
    )
    assert person.get_username() not in sentence


def test_back_to_the_console_wide_roles_is_a_change_request_too(
    run_on_commit: Callable[..., Any],
) -> None:
    ada, bob = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    person = user_with_role(Role.EDITOR)
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.VIEWER])
    _client(ada).post(_roles_url(person, "production"), {"scope": "console"})
    cr = ChangeRequest.objects.get()
    assert cr.payload == {"same_as_console_wide": True, "roles": []}
    with run_on_commit():
        change_request_approve(actor=bob, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert not WorkspaceRole.objects.filter(user=person).exists()
    assert _roles_in(person, "production") == {Role.EDITOR}


def test_an_admin_cannot_approve_roles_given_to_themselves_in_a_workspace() -> None:
    ada, colleague = user_with_role(Role.ADMIN), user_with_role(Role.ADMIN)
    cr = services.user_workspace_roles_propose(
        actor=ada, user=colleague, workspace="production", roles={Role.ADMIN, Role.REVIEWER}
    )
    assert cr is not None
    with pytest.raises(FourEyesViolation, match="about your own account"):
        change_request_approve(actor=colleague, change_request=cr)
    assert list(change_requests_awaiting_review(user=colleague)) == []
    assert list(change_requests_awaiting_review(user=colleague, workspace="production")) == []


def test_nothing_is_proposed_when_the_roles_there_are_already_those() -> None:
    ada = user_with_role(Role.ADMIN)
    person = user_with_role(Role.EDITOR)
    assert (
        services.user_workspace_roles_propose(
            actor=ada, user=person, workspace="production", roles=None
        )
        is None
    )
    assert not ChangeRequest.objects.exists()


def test_the_last_admin_of_a_workspace_cannot_be_given_other_roles_there() -> None:
    ada = user_with_role(Role.ADMIN)
    # An Admin everywhere else, but only a Viewer in production: not an Admin there.
    other = user_with_role(Role.ADMIN)
    user_workspace_roles_assign(user=other, workspace="production", roles=[Role.VIEWER])

    response = _client(other).post(
        _roles_url(ada, "staging"), {"scope": "workspace", "roles": ["Viewer"]}
    )
    assert response.status_code == 302  # staging keeps `other` as its Admin
    with pytest.raises(services.SelfLockoutError, match="last active Admin in Production"):
        services.user_workspace_roles_propose(
            actor=other, user=ada, workspace="production", roles={Role.VIEWER}
        )
    refused = AuditEntry.objects.get(action="user.workspace_roles_changed", outcome="refused")
    assert (refused.workspace, refused.data["reason"]) == ("production", "last_active_admin")
    assert list(ChangeRequest.objects.values_list("workspace", flat=True)) == ["staging"]


def test_a_change_applied_after_the_workspace_lost_its_other_admins_fails_not_locks_out() -> None:
    ada, bob, cy = (user_with_role(Role.ADMIN) for _ in range(3))
    cr = services.user_workspace_roles_propose(
        actor=bob, user=ada, workspace="production", roles={Role.VIEWER}
    )
    assert cr is not None
    change_request_approve(actor=cy, change_request=cr)
    # Before the worker applies it, the other Admins of production stop being Admins there.
    user_workspace_roles_assign(user=bob, workspace="production", roles=[Role.VIEWER])
    user_workspace_roles_assign(user=cy, workspace="production", roles=[Role.VIEWER])
    change_request_apply(change_request_id=cr.pk, actor_id=cy.pk)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert "last active Admin in Production" in cr.error_message
    assert _roles_in(ada, "production") == {Role.ADMIN}


def test_a_console_wide_demotion_that_leaves_production_without_an_admin_is_refused() -> None:
    ada = user_with_role(Role.ADMIN)
    # The other Admin is only a Viewer in production.
    bob = user_with_role(Role.ADMIN)
    user_workspace_roles_assign(user=bob, workspace="production", roles=[Role.VIEWER])
    with pytest.raises(services.SelfLockoutError, match="last active Admin in Production"):
        services.user_set_roles(actor=bob, user=ada, roles={Role.EDITOR})
    assert _roles_in(ada) == {Role.ADMIN}
    # Once production has an Admin of its own, the demotion goes through.
    user_workspace_roles_assign(
        user=user_with_role(None), workspace="production", roles=[Role.ADMIN]
    )
    services.user_set_roles(actor=bob, user=ada, roles={Role.EDITOR})
    assert _roles_in(ada) == {Role.EDITOR}


def test_the_last_admin_of_production_only_cannot_be_deactivated() -> None:
    carol = user_with_role(None)
    user_workspace_roles_assign(user=carol, workspace="production", roles=[Role.ADMIN])
    dan = user_with_role(Role.ADMIN)
    user_workspace_roles_assign(user=dan, workspace="production", roles=[Role.VIEWER])
    with pytest.raises(services.SelfLockoutError, match="last active Admin in Production"):
        services.user_deactivate(actor=dan, user=carol)
    carol.refresh_from_db()
    assert carol.is_active


# --- reviewers by the roles they hold in the request's workspace ---------------------------


@pytest.fixture
def reviewers() -> dict[str, User]:
    """A Reviewer everywhere, a Reviewer everywhere but production (a Viewer there), and
    someone who reviews in production only."""
    everywhere = user_with_role(Role.REVIEWER, username="everywhere")
    not_production = user_with_role(Role.REVIEWER, username="not_production")
    user_workspace_roles_assign(user=not_production, workspace="production", roles=[Role.VIEWER])
    production_only = user_with_role(None, username="production_only")
    user_workspace_roles_assign(user=production_only, workspace="production", roles=[Role.REVIEWER])
    return {
        "everywhere": everywhere,
        "not_production": not_production,
        "production_only": production_only,
    }


def test_the_review_email_goes_only_to_those_who_review_in_the_requests_workspace(
    reviewers: dict[str, User], django_capture_on_commit_callbacks: Any
) -> None:
    editor = user_with_role(Role.EDITOR)
    with django_capture_on_commit_callbacks(execute=True):
        _propose_content(editor, "production")
    with django_capture_on_commit_callbacks(execute=True):
        _propose_content(editor, "staging")
    production, staging = mail.outbox
    assert production.subject == "Review requested: Cheaper item in production"
    assert sorted(production.bcc) == [
        "everywhere@example.com",
        "production_only@example.com",
    ]
    assert sorted(staging.bcc) == ["everywhere@example.com", "not_production@example.com"]


def test_role_changes_in_production_are_emailed_to_production_admins_only(
    django_capture_on_commit_callbacks: Any,
) -> None:
    ada = user_with_role(Role.ADMIN, username="ada")
    user_with_role(Role.ADMIN, username="everywhere_admin")
    viewer_there = user_with_role(Role.ADMIN, username="viewer_in_production")
    user_workspace_roles_assign(user=viewer_there, workspace="production", roles=[Role.VIEWER])
    with django_capture_on_commit_callbacks(execute=True):
        services.user_workspace_roles_propose(
            actor=ada,
            user=user_with_role(Role.VIEWER),
            workspace="production",
            roles={Role.EDITOR},
        )
    (message,) = mail.outbox
    assert message.bcc == ["everywhere_admin@example.com"]


def test_review_queues_count_only_what_one_may_review_in_the_workspace(
    reviewers: dict[str, User],
) -> None:
    editor = user_with_role(Role.EDITOR)
    in_production = _propose_content(editor, "production")
    in_staging = _propose_content(editor, "staging")

    def queue(name: str, workspace: str | None) -> list[int]:
        user = reviewers[name]
        forget_cached_roles(user)
        found = change_requests_awaiting_review(user=user, workspace=workspace)
        return sorted(found.values_list("pk", flat=True))

    both = sorted([in_production.pk, in_staging.pk])
    assert queue("everywhere", None) == both
    assert queue("not_production", None) == [in_staging.pk]
    assert queue("not_production", "production") == []
    assert queue("production_only", None) == [in_production.pk]
    assert queue("production_only", "staging") == []
    assert queue("production_only", "production") == [in_production.pk]
    assert review_count_for(reviewers["production_only"], "production") == 1
    assert review_count_for(reviewers["not_production"], "production") == 0


def test_the_home_page_shows_a_production_only_reviewer_their_production_reviews(
    reviewers: dict[str, User],
) -> None:
    editor = user_with_role(Role.EDITOR)
    in_production = _propose_content(editor, "production")
    _propose_content(editor, "staging")
    home = workspace_reverse("home", workspace="production")

    page = _client(reviewers["production_only"]).get(home).content.decode()
    assert "Cheaper item in production" in page
    assert "Cheaper item in staging" not in page
    detail = workspace_reverse("changes:detail", workspace="production", args=[in_production.pk])
    assert _client(reviewers["production_only"]).get(detail).status_code == 200

    page = _client(reviewers["not_production"]).get(home).content.decode()
    assert "Cheaper item in production" not in page
    assert "Cheaper item in staging" in page


def test_a_production_only_reviewer_may_approve_in_production(
    reviewers: dict[str, User],
) -> None:
    cr = _propose_content(user_with_role(Role.EDITOR), "production")
    act = workspace_reverse("changes:act", workspace="production", args=[cr.pk])
    response = _client(reviewers["production_only"]).post(act, {"op": "approve"})
    assert response.status_code == 302
    assert cr.reviews.filter(reviewer=reviewers["production_only"]).exists()
    with pytest.raises(FourEyesViolation):
        change_request_approve(actor=reviewers["not_production"], change_request=cr)
