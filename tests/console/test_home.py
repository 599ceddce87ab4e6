"""The home page answers "what needs me" and "what changed", each part as the person's role
allows, each number linking to the list it counts."""

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog_bulk.models import JobState
from catalog_bulk.services import bulk_job_parse, bulk_job_upload
from catalogs.models import Catalog
from console.audit import events
from console.audit.models import AuditEntry
from console.audit.services import SYSTEM, audit_append
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_propose
from console.home.models import HomeMark
from console.roles import Role
from tests.console.changes.conftest import FakeBraze, clock_at, registered
from tests.factories import CatalogFactory, user_with_role


@pytest.fixture
def fake_braze(db: None) -> Iterator[FakeBraze]:
    fake = FakeBraze(store={"shoe-1": {"id": "shoe-1", "name": "Shoe", "price": 10}})
    with registered("fake_item", fake, label="Fake item"):
        yield fake


def _signed_in(user: User, **options: Any) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def _home(user: User) -> str:
    response = _signed_in(user).get(reverse("home"))
    assert response.status_code == 200
    return response.content.decode()


def _propose(fake: FakeBraze, author: User, price: int = 12) -> ChangeRequest:
    return change_request_propose(
        actor=author,
        resource_type="fake_item",
        identifier="shoe-1",
        action="update",
        payload={"price": price},
        base_snapshot=fake.read_current("shoe-1"),
    )


def _section(body: str, section_id: str) -> str:
    match = re.search(rf'<div id="{section_id}">(.*?)\n  </div>', body, re.DOTALL)
    assert match, f"no #{section_id} on the page"
    return match.group(1)


def test_the_reviewer_sees_the_waiting_request_with_its_age(
    fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    with clock_at(timezone.now() - timedelta(days=2, hours=3)):
        cr = _propose(fake_braze, editor)
    reviews = _section(_home(reviewer), "reviews")
    assert f'href="{reverse("changes:list")}?view=review" data-count="1"' in reviews
    assert f"#{cr.pk} {cr.title}" in reviews
    assert "2\xa0days, 3\xa0hours" in reviews


def test_the_review_count_links_to_the_queue_it_counts(
    fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    cr = _propose(fake_braze, editor)
    queue = _signed_in(reviewer).get(reverse("changes:list"), {"view": "review"})
    assert f">{cr.title}<" in queue.content.decode()


def test_a_viewer_sees_no_review_queue_and_no_requests(fake_braze: FakeBraze, editor: User) -> None:
    _propose(fake_braze, editor)
    body = _home(user_with_role(Role.VIEWER))
    assert 'id="needs-me"' not in body
    assert "waiting for my review" not in body
    assert 'id="applied"' not in body
    assert 'id="attention"' not in body


def test_an_editor_sees_their_requests_by_state_each_linking_to_its_list(
    fake_braze: FakeBraze, editor: User
) -> None:
    cr = _propose(fake_braze, editor)
    body = _home(editor)
    assert 'id="reviews"' not in body  # an Editor reviews nothing
    mine = _section(body, "my-requests")
    link = f"{reverse('changes:list')}?view=mine&amp;state=pending"
    assert f'<a href="{link}" data-state="pending">1 pending review</a>' in mine
    assert f"#{cr.pk} {cr.title}" in mine
    listed = _signed_in(editor).get(reverse("changes:list"), {"view": "mine", "state": "pending"})
    assert f">{cr.title}<" in listed.content.decode()
    nothing = _signed_in(editor).get(reverse("changes:list"), {"view": "mine", "state": "failed"})
    assert f">{cr.title}<" not in nothing.content.decode()


def test_an_editor_sees_their_bulk_job_and_its_progress(db: None, editor: User) -> None:
    catalog = CatalogFactory(name="shoes")
    assert isinstance(catalog, Catalog)
    job = bulk_job_upload(
        actor=editor,
        catalog=catalog,
        operation="upsert",
        upload=SimpleUploadedFile("items.csv", b"id,name\nitem-1,One\n"),
    )
    job = bulk_job_parse(job_id=job.pk)
    assert job.state == JobState.READY
    jobs = _section(_home(editor), "my-jobs")
    assert reverse("catalog_bulk:job", args=["shoes", job.pk]) in jobs
    assert 'progress max="100" value="0"' in jobs
    assert "?view=mine&amp;resource_type=catalog_bulk" in jobs
    # Someone else's job is not "mine".
    assert "No bulk job of yours" in _section(_home(user_with_role(Role.EDITOR)), "my-jobs")


def test_the_change_list_filters_by_resource_type(fake_braze: FakeBraze, editor: User) -> None:
    cr = _propose(fake_braze, editor)
    client = _signed_in(editor)
    kept = client.get(reverse("changes:list"), {"view": "mine", "resource_type": "fake_item"})
    assert f">{cr.title}<" in kept.content.decode()
    other = client.get(reverse("changes:list"), {"view": "mine", "resource_type": "catalog_bulk"})
    assert f">{cr.title}<" not in other.content.decode()


def test_applied_and_failed_changes_are_counted_with_links(
    fake_braze: FakeBraze, editor: User, reviewer: User
) -> None:
    applied, failed = _propose(fake_braze, editor), _propose(fake_braze, editor, price=13)
    ChangeRequest.objects.filter(pk=applied.pk).update(
        state=ChangeState.APPLIED, applied_at=timezone.now()
    )
    ChangeRequest.objects.filter(pk=failed.pk).update(state=ChangeState.FAILED)
    body = _home(reviewer)
    recent = _section(body, "applied")
    assert f'{reverse("changes:list")}?view=all&amp;state=applied" data-count="1"' in recent
    assert f"#{applied.pk} {applied.title}" in recent
    attention = _section(body, "attention")
    assert '?view=all&amp;state=failed" data-state="failed">1 failed</a>' in attention
    assert 'data-state="conflict">0 conflict</a>' in attention


def test_requests_about_people_reach_only_those_who_may_see_them(db: None) -> None:
    """A dashboard user's name is in its request's title: a Reviewer's home never shows it."""
    admin = user_with_role(Role.ADMIN)
    ChangeRequest.objects.create(
        resource_type="dashboard_user",
        identifier="new:ann",
        action="create",
        title="Create dashboard user Ann Example",
        payload={},
        payload_hash="x",
        state=ChangeState.APPLIED,
        applied_at=timezone.now(),
        author=admin,
        last_editor=admin,
    )
    assert "Ann Example" not in _home(user_with_role(Role.REVIEWER))
    assert "Ann Example" not in _home(user_with_role(Role.EDITOR))
    assert "Ann Example" in _section(_home(user_with_role(Role.AUDITOR)), "applied")


def _outside(resource_id: str, name: str) -> AuditEntry:
    return audit_append(
        actor=SYSTEM,
        action=events.CONTENT_EXTERNAL_CHANGE,
        resource_type="content_block",
        resource_id=resource_id,
        data={"name": name},
    )


def test_changes_made_outside_the_console_since_i_last_looked(db: None) -> None:
    viewer = user_with_role(Role.VIEWER)
    first = _outside("b-1", "spring_banner")
    body = _section(_home(viewer), "outside")
    assert "in the last 7 days" in body
    assert "Content block spring_banner was changed in Braze, outside the console" in body

    client = _signed_in(viewer)
    response = client.post(reverse("home_seen"), {"seq": first.seq})
    assert response.status_code == 303
    assert HomeMark.objects.get(user=viewer).external_seen_seq == first.seq
    _outside("b-2", "summer_banner")
    body = _section(_home(viewer), "outside")
    assert "since I last looked" in body
    assert "summer_banner" in body
    assert "spring_banner" not in body
    # A Viewer may not read the audit log: the count is not a link to it.
    assert reverse("audit:list") not in body


def test_the_auditors_count_opens_the_audit_log_after_their_mark(db: None) -> None:
    auditor = user_with_role(Role.AUDITOR)
    seen = _outside("b-1", "spring_banner")
    HomeMark.objects.create(user=auditor, external_seen_seq=seen.seq)
    _outside("b-2", "summer_banner")
    body = _section(_home(auditor), "outside")
    link = f'{reverse("audit:list")}?outside=on&amp;after={seen.seq}" data-count="1"'
    assert link in body
    listed = _signed_in(auditor).get(
        reverse("audit:list"), {"outside": "on", "after": str(seen.seq)}
    )
    assert "summer_banner" in listed.content.decode()
    assert "spring_banner" not in listed.content.decode()


def test_the_mark_never_moves_back_nor_past_the_newest_entry(db: None) -> None:
    viewer = user_with_role(Role.VIEWER)
    first, second = _outside("b-1", "one"), _outside("b-2", "two")
    client = _signed_in(viewer)
    client.post(reverse("home_seen"), {"seq": second.seq})
    client.post(reverse("home_seen"), {"seq": first.seq})
    assert HomeMark.objects.get(user=viewer).external_seen_seq == second.seq
    client.post(reverse("home_seen"), {"seq": second.seq + 1000})
    assert HomeMark.objects.get(user=viewer).external_seen_seq == second.seq
    assert client.post(reverse("home_seen"), {"seq": "x"}).status_code == 400


def test_marking_as_seen_needs_the_csrf_token(db: None) -> None:
    viewer = user_with_role(Role.VIEWER)
    entry = _outside("b-1", "one")
    client = _signed_in(viewer, enforce_csrf_checks=True)
    assert client.post(reverse("home_seen"), {"seq": entry.seq}).status_code == 403
    assert not HomeMark.objects.filter(user=viewer).exists()


def test_empty_states_say_so(db: None) -> None:
    body = _home(user_with_role(Role.EDITOR))
    assert "You have not proposed any changes yet." in body
    assert "No bulk job of yours is under way." in body
    assert "Nothing has been applied yet." in body
    assert "Nothing was changed in Braze outside the console since you last looked." in body
    reviewer = _home(user_with_role(Role.REVIEWER))
    assert "Nothing waits for your review." in reviewer
    nobody = _home(user_with_role(None))
    assert "You have no role yet" in nobody
    assert 'id="what-changed"' not in nobody


@pytest.mark.parametrize("many", [1, 8])
def test_the_home_takes_a_bounded_number_of_queries(
    many: int,
    fake_braze: FakeBraze,
    editor: User,
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    """However much waits, the admin's home (every part shown) costs the same queries."""
    admin = user_with_role(Role.ADMIN)
    reviewer = user_with_role(Role.REVIEWER)
    for i in range(many):
        _propose(fake_braze, editor, price=20 + i)
        _outside(f"b-{i}", f"block_{i}")
    for cr in ChangeRequest.objects.all()[: many // 2]:
        ChangeRequest.objects.filter(pk=cr.pk).update(
            state=ChangeState.APPLIED, applied_at=timezone.now()
        )
    for user in (admin, reviewer, editor):
        client = _signed_in(user)
        with django_assert_max_num_queries(18):
            assert client.get(reverse("home")).status_code == 200
