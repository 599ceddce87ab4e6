from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_propose
from console.roles import Role
from tests.factories import user_with_role

from .conftest import FakeBraze, reregister


def _cr(fake: FakeBraze, author: User, payload: dict[str, Any] | None = None):
    return change_request_propose(
        actor=author,
        resource_type="fake_item",
        identifier="shoe-1",
        action="update",
        payload=payload or {"price": 12},
        base_snapshot=fake.read_current("shoe-1"),
    )


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_review_queue_and_its_count_show_pending_requests(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _cr(fake_braze, editor)
    page = _client(reviewer).get(reverse("changes:list")).content.decode()
    assert cr.title in page
    assert 'aria-label="1 awaiting your review"' in page
    mine = _client(editor).get(reverse("changes:list") + "?view=review").content.decode()
    assert "awaiting your review" not in mine


def test_the_detail_shows_a_field_diff_and_line_diff_for_long_text(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    fake_braze.store["shoe-1"]["body"] = "<p>Hello</p>\n<p>World</p>"
    cr = _cr(fake_braze, editor, {"body": "<p>Hello</p>\n<p>Moon</p>"})
    page = _client(reviewer).get(reverse("changes:detail", args=[cr.pk])).content.decode()
    assert '<div class="del">− &lt;p&gt;World&lt;/p&gt;</div>' in page
    assert '<div class="add">+ &lt;p&gt;Moon&lt;/p&gt;</div>' in page
    assert "change_request.proposed" in page  # the timeline
    assert 'value="approve"' in page


def test_the_author_sees_no_approve_button_and_a_posted_approval_is_refused(
    db: None, fake_braze: FakeBraze
) -> None:
    author = user_with_role(Role.EDITOR)
    author.groups.add(*user_with_role(Role.REVIEWER).groups.all())
    cr = _cr(fake_braze, author)
    client = _client(author)
    page = client.get(reverse("changes:detail", args=[cr.pk])).content.decode()
    assert 'value="approve"' not in page
    response = client.post(reverse("changes:act", args=[cr.pk]), {"op": "approve"}, follow=True)
    assert "someone else must review it" in response.content.decode()
    cr.refresh_from_db()
    assert cr.state == ChangeState.PENDING


def test_a_reviewer_rejects_with_a_comment(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _cr(fake_braze, editor)
    client = _client(reviewer)
    response = client.post(reverse("changes:act", args=[cr.pk]), {"op": "reject"}, follow=True)
    assert "comment is required" in response.content.decode()
    client.post(reverse("changes:act", args=[cr.pk]), {"op": "reject", "comment": "No"})
    cr.refresh_from_db()
    assert cr.state == ChangeState.REJECTED


def test_an_admin_proposes_an_approval_policy_and_another_admin_approves_it(
    db: None, run_on_commit: Any
) -> None:
    from console.audit.models import AuditEntry
    from console.changes.policy import approvals_required

    admin = _client(user_with_role(Role.ADMIN))
    assert admin.get(reverse("changes:policy")).status_code == 200
    response = admin.post(
        reverse("changes:policy"),
        {"resource_type": "catalog_item", "action": "update", "required_approvals": 2},
        follow=True,
    )
    assert "another Admin approves it" in response.content.decode()
    assert approvals_required(resource_type="catalog_item", action="update") == 1
    cr = ChangeRequest.objects.get(resource_type="approval_policy")
    with run_on_commit():
        _client(user_with_role(Role.ADMIN)).post(
            reverse("changes:act", args=[cr.pk]), {"op": "approve"}
        )
    assert approvals_required(resource_type="catalog_item", action="update") == 2
    assert AuditEntry.objects.filter(action="policy.changed").count() == 1


def test_an_admin_withdraws_and_comments_on_their_own_admin_proposed_request(
    db: None, fake_braze: FakeBraze
) -> None:
    from console.roles import Capability

    reregister("fake_item", propose=Capability.MANAGE_USERS)
    admin = user_with_role(Role.ADMIN)
    cr = _cr(fake_braze, admin)
    client = _client(admin)
    client.post(reverse("changes:act", args=[cr.pk]), {"op": "comment", "comment": "Typo"})
    assert cr.comments.get().body == "Typo"
    client.post(reverse("changes:act", args=[cr.pk]), {"op": "cancel"})
    cr.refresh_from_db()
    assert cr.state == ChangeState.CANCELLED


def test_an_admin_cannot_comment_on_a_content_request_they_did_not_propose(
    db: None, fake_braze: FakeBraze, editor: User
) -> None:
    cr = _cr(fake_braze, editor)
    response = _client(user_with_role(Role.ADMIN)).post(
        reverse("changes:act", args=[cr.pk]), {"op": "comment", "comment": "Hi"}, follow=True
    )
    assert "Only those who propose or review this kind of change can comment" in (
        response.content.decode()
    )
    assert not cr.comments.exists()


def test_the_detail_links_to_the_resources_rendered_review_page_when_it_has_one(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    reregister("fake_item", review_url="templates_app:change_preview")
    cr = _cr(fake_braze, editor)
    page = _client(reviewer).get(reverse("changes:detail", args=[cr.pk])).content.decode()
    assert f'href="{reverse("templates_app:change_preview", args=[cr.pk])}"' in page


def test_a_change_that_cannot_use_the_whole_rate_limit_offers_no_choice_and_refuses_it(
    db: None, fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _cr(fake_braze, editor)
    page = _client(reviewer).get(cr.get_absolute_url()).content.decode()
    assert 'name="full_rate_limit"' not in page
    response = _client(reviewer).post(
        reverse("changes:act", args=[cr.pk]), {"op": "approve", "full_rate_limit": "1"}
    )
    assert response.status_code == 302
    cr.refresh_from_db()
    assert (cr.state, cr.full_rate_limit) == (ChangeState.PENDING, False)


# The session, the user with their roles (groups and workspace roles in the same query), the
# table's count and its rows with their authors; the full page adds the navigation's badge.
# A query per row (an author, a review) fails these, as does the badge on a fragment.
@pytest.mark.parametrize(
    ("view", "fragment", "queries"),
    [
        ("review", False, 5),
        ("review", True, 4),
        ("all", False, 5),
        ("all", True, 4),
    ],
)
def test_the_change_list_takes_the_same_few_queries_however_many_rows_it_shows(
    db: None,
    fake_braze: FakeBraze,
    reviewer: User,
    django_assert_num_queries: Callable[..., Any],
    view: str,
    fragment: bool,
    queries: int,
) -> None:
    for i in range(12):
        change_request_propose(
            actor=user_with_role(Role.EDITOR),
            resource_type="fake_item",
            identifier=f"shoe-{i}",
            action="update",
            payload={"price": i},
            base_snapshot=fake_braze.read_current("shoe-1"),
        )
    client = _client(reviewer)
    headers = {"HX-Request": "true", "HX-Target": "results"} if fragment else {}
    with django_assert_num_queries(queries):
        response = client.get(reverse("changes:list"), {"view": view}, headers=headers)
    assert response.content.decode().count('href="/changes/') >= 12


def test_each_listed_request_links_to_its_own_page_by_number_and_by_title(
    db: None, fake_braze: FakeBraze, reviewer: User
) -> None:
    requests = [
        change_request_propose(
            actor=user_with_role(Role.EDITOR),
            resource_type="fake_item",
            identifier=f"shoe-{i}",
            action="update",
            payload={"price": i},
            base_snapshot=fake_braze.read_current("shoe-1"),
        )
        for i in range(3)
    ]
    html = _client(reviewer).get(reverse("changes:list"), {"view": "all"}).content.decode()
    for cr in requests:
        assert html.count(f'href="{cr.get_absolute_url()}"') == 2
