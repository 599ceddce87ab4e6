"""Who may see a change request depends on what it changes: a real request of every
resource type, opened by every role through every screen and action that names one.

The table is the specification, written by hand: requests about staff (Braze dashboard
users, console roles) and the approval policy are for Admins and Auditors only; content
requests for every role that works with change requests. A request one may not see answers
404, like one that does not exist; a screen one's role may not open at all answers 403.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.changes.models import ChangeRequest
from console.changes.resource_types import resource_types_registered
from console.changes.services import change_request_propose
from console.roles import Role
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db

EVERYONE_WHO_WORKS_WITH_CHANGES = frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN})
ADMINS_AND_AUDITORS = frozenset({Role.AUDITOR, Role.ADMIN})


@dataclass(frozen=True)
class Example:
    """A change request as its app proposes it, and who may see and comment on it."""

    proposer: Role
    identifier: str
    action: str
    payload: dict[str, Any]
    base: dict[str, Any] | None
    title: str
    viewers: frozenset[Role]
    commenters: frozenset[Role]
    html: bool = False  # the content pages' rendered before/after preview


# Who proposes, sees and comments on each kind of request.
CONTENT: dict[str, Any] = {
    "proposer": Role.EDITOR,
    "viewers": EVERYONE_WHO_WORKS_WITH_CHANGES,
    "commenters": frozenset({Role.EDITOR, Role.REVIEWER}),
}
STAFF: dict[str, Any] = {
    "proposer": Role.ADMIN,
    "viewers": ADMINS_AND_AUDITORS,
    "commenters": frozenset({Role.ADMIN}),
}

EXAMPLES: dict[str, Example] = {
    "catalog": Example(
        **CONTENT,
        identifier="shoes",
        action="delete",
        payload={},
        base={"name": "shoes", "description": "Shoes"},
        title="Delete catalog shoes",
    ),
    "catalog_item": Example(
        **CONTENT,
        identifier="shoes/sku-1",
        action="update",
        payload={"price": 12},
        base={"name": "Shoe", "price": 10},
        title="Update catalog item shoes/sku-1",
    ),
    "catalog_field": Example(
        **CONTENT,
        identifier="shoes/colour",
        action="delete",
        payload={},
        base={"name": "colour", "type": "string"},
        title="Delete field colour from shoes",
    ),
    "catalog_selection": Example(
        **CONTENT,
        identifier="shoes/cheap",
        action="create",
        payload={
            "name": "cheap",
            "external_id": "console-shoes-cheap",
            "filters": [{"field": "price", "operator": "less than", "value": 20}],
            "results_limit": 5,
            "sort_field": None,
            "sort_order": None,
        },
        base=None,
        title="Create selection cheap in shoes",
    ),
    "catalog_bulk": Example(
        **CONTENT,
        identifier="shoes/bulk-1",
        action="bulk",
        payload={"job": 999999, "plan_hash": "0" * 64, "update": 3},
        base=None,
        title="Bulk update of shoes",
    ),
    "email_template": Example(
        **CONTENT,
        identifier="tpl-1",
        action="update",
        payload={"body": "<p>Hello again</p>"},
        base={"name": "Welcome", "subject": "Hi", "body": "<p>Hello</p>"},
        title="Update email template Welcome",
        html=True,
    ),
    "content_block": Example(
        **CONTENT,
        identifier="new:block",
        action="create",
        payload={"name": "promo", "content": "<p>Sale</p>"},
        base=None,
        title="Create Content Block promo",
        html=True,
    ),
    "preference_center": Example(
        **CONTENT,
        identifier="pc-1",
        action="update",
        payload={"preference_center_page_html": "<p>New</p>"},
        base={
            "name": "Prefs",
            "preference_center_page_html": "<p>Old</p>",
            "confirmation_page_html": "<p>Done</p>",
        },
        title="Update preference center Prefs",
        html=True,
    ),
    # Several content parts in one request (bundles/): an import or a promotion.
    "content_bundle": Example(
        **CONTENT,
        identifier="bundle:0123456789abcdef",
        action="update",
        payload={
            "workspace": "default",
            "parts": [
                {
                    "kind": "content_block",
                    "name": "promo",
                    "action": "update",
                    "identifier": "block-1",
                    "payload": {"name": "promo", "content": "<p>New</p>", "state": "active"},
                }
            ],
        },
        base={"content_block:promo/name": "promo", "content_block:promo/content": "<p>Old</p>"},
        title="Import into Default: 1 content block",
    ),
    # Staff names, emails and Braze permissions.
    "dashboard_user": Example(
        **STAFF,
        identifier="new:0123456789abcdef",
        action="create",
        payload={
            "email": "staff.person@example.com",
            "given_name": "Staff",
            "family_name": "Person",
            "department": "marketing",
            "permissions": {"companyPermissions": ["admin"]},
        },
        base=None,
        title="Create dashboard user Staff Person",
    ),
    # Who may do what in the console (the identifier: a console user made for the test).
    "console_role": Example(
        **STAFF,
        identifier="",
        action="update",
        payload={"roles": ["Reviewer"]},
        base={"roles": ["Viewer"]},
        title="Give somebody the Reviewer role",
    ),
    # Who may do what in one workspace (the identifier: a console user made for the test).
    "workspace_role": Example(
        **STAFF,
        identifier="",
        action="update",
        payload={"same_as_console_wide": False, "roles": ["Viewer"]},
        base={"same_as_console_wide": True, "roles": []},
        title="Roles of somebody in Default: Viewer",
    ),
    # Removing a console user's second factors (the identifier: a console user made for the test).
    "second_factor_reset": Example(
        **STAFF,
        identifier="",
        action="update",
        payload={"factors": []},
        base={"factors": ["Authenticator app: Phone"]},
        title="Reset somebody's second factor",
    ),
    "approval_policy": Example(
        **STAFF,
        identifier="dashboard_user/update",
        action="update",
        payload={"required_approvals": 1},
        base={"required_approvals": 2},
        title="Approvals for dashboard_user update: 2 → 1",
    ),
}

ROLES = [*Role, None]
ROLE_IDS = [*(r.value for r in Role), "no-role"]


def test_every_resource_type_is_in_the_table() -> None:
    assert {rt.key for rt in resource_types_registered()} == set(EXAMPLES)


def _propose(resource_type: str) -> ChangeRequest:
    example = EXAMPLES[resource_type]
    identifier = example.identifier or str(user_with_role(Role.VIEWER).pk)
    return change_request_propose(
        actor=user_with_role(example.proposer),
        resource_type=resource_type,
        identifier=identifier,
        action=example.action,
        payload=example.payload,
        base_snapshot=example.base,
        title=example.title,
    )


@pytest.fixture
def as_role(db: None) -> Callable[[Role | None], tuple[Client, User | None]]:
    def make(role: Role | None) -> tuple[Client, User | None]:
        client = Client()
        user = user_with_role(role)
        client.force_login(user)
        return client, user

    return make


def _expected(role: Role | None, allowed_by_screen: frozenset[Role], visible: bool) -> int:
    if role not in allowed_by_screen:
        return 403
    return 200 if visible else 404


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
@pytest.mark.parametrize("resource_type", sorted(EXAMPLES))
def test_the_list_shows_a_request_only_to_those_who_may_see_it(
    as_role: Callable[[Role | None], tuple[Client, User | None]],
    resource_type: str,
    role: Role | None,
) -> None:
    cr = _propose(resource_type)
    client, _ = as_role(role)
    example = EXAMPLES[resource_type]
    for view in ("all", "review", "mine"):
        response = client.get(reverse("changes:list"), {"view": view})
        if role not in EVERYONE_WHO_WORKS_WITH_CHANGES:
            assert response.status_code == 403
            continue
        assert response.status_code == 200
        page = response.content.decode()
        assert cr.get_absolute_url() not in page or role in example.viewers, view
    page = client.get(reverse("changes:list"), {"view": "all"}).content.decode()
    if role in example.viewers:
        assert cr.get_absolute_url() in page
    if role not in example.viewers:
        assert example.title not in page
        assert "staff.person" not in page


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
@pytest.mark.parametrize("resource_type", sorted(EXAMPLES))
def test_the_detail_page_opens_only_for_those_who_may_see_it(
    as_role: Callable[[Role | None], tuple[Client, User | None]],
    resource_type: str,
    role: Role | None,
) -> None:
    cr = _propose(resource_type)
    client, _ = as_role(role)
    example = EXAMPLES[resource_type]
    response = client.get(reverse("changes:detail", args=[cr.pk]))
    assert response.status_code == _expected(
        role, EVERYONE_WHO_WORKS_WITH_CHANGES, role in example.viewers
    )
    if response.status_code == 404:
        # Answered exactly like a request that does not exist.
        missing = client.get(reverse("changes:detail", args=[cr.pk + 1000]))
        assert missing.status_code == 404
        assert example.title not in response.content.decode()


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
@pytest.mark.parametrize("resource_type", sorted(EXAMPLES))
def test_comments_and_decisions_reach_only_requests_one_may_see(
    as_role: Callable[[Role | None], tuple[Client, User | None]],
    resource_type: str,
    role: Role | None,
) -> None:
    cr = _propose(resource_type)
    client, _ = as_role(role)
    example = EXAMPLES[resource_type]
    acting = frozenset({Role.EDITOR, Role.REVIEWER, Role.ADMIN})
    url = reverse("changes:act", args=[cr.pk])
    response = client.post(url, {"op": "comment", "comment": "Looks fine"})
    expected = _expected(role, acting, role in example.viewers)
    assert response.status_code == (302 if expected == 200 else expected)
    assert cr.comments.exists() == (role in example.commenters)
    for op in ("approve", "reject", "retry", "rebase", "cancel"):
        response = client.post(url, {"op": op, "comment": "No"})
        assert response.status_code == (302 if expected == 200 else expected), op
    cr.refresh_from_db()
    if role not in example.viewers:
        assert cr.state == "pending"
        assert not cr.reviews.exists()


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
@pytest.mark.parametrize("resource_type", sorted(EXAMPLES))
def test_the_rendered_preview_opens_only_for_those_who_may_see_the_request(
    as_role: Callable[[Role | None], tuple[Client, User | None]],
    resource_type: str,
    role: Role | None,
) -> None:
    cr = _propose(resource_type)
    client, _ = as_role(role)
    example = EXAMPLES[resource_type]
    response = client.get(reverse("templates_app:change_preview", args=[cr.pk]))
    assert response.status_code == _expected(
        role, EVERYONE_WHO_WORKS_WITH_CHANGES, example.html and role in example.viewers
    )


def test_an_editor_neither_lists_opens_nor_comments_on_a_dashboard_user_request(
    as_role: Callable[[Role | None], tuple[Client, User | None]],
) -> None:
    cr = _propose("dashboard_user")
    editor, _ = as_role(Role.EDITOR)
    page = editor.get(reverse("changes:list"), {"view": "all"}).content.decode()
    assert "Staff Person" not in page
    assert editor.get(reverse("changes:detail", args=[cr.pk])).status_code == 404
    response = editor.post(reverse("changes:act", args=[cr.pk]), {"op": "comment", "comment": "?"})
    assert response.status_code == 404
    assert not cr.comments.exists()
    # An Auditor reads it; an Admin other than its author may approve it.
    auditor, _ = as_role(Role.AUDITOR)
    assert "Staff Person" in auditor.get(reverse("changes:detail", args=[cr.pk])).content.decode()
    admin, _ = as_role(Role.ADMIN)
    assert 'value="approve"' in admin.get(reverse("changes:detail", args=[cr.pk])).content.decode()
    reviewer, _ = as_role(Role.REVIEWER)
    assert reviewer.get(reverse("changes:detail", args=[cr.pk])).status_code == 404
