from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from console.role_models import WorkspaceRole
from console.roles import (
    Role,
    user_roles,
    user_roles_fingerprint,
    user_with_roles_get,
    user_workspaces_scoped,
)
from sso.backends import LocalPasswordBackend, OidcBackend
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def person() -> User:
    """An Editor everywhere, a Viewer in production and a Reviewer and Editor in staging,
    also in a group that is no console role."""
    user = user_with_role(Role.EDITOR)
    user.groups.add(Group.objects.create(name="Newsletter readers"))
    WorkspaceRole.objects.create(user=user, workspace="production", role=Role.VIEWER)
    WorkspaceRole.objects.create(user=user, workspace="staging", role=Role.REVIEWER)
    WorkspaceRole.objects.create(user=user, workspace="staging", role=Role.EDITOR)
    WorkspaceRole.objects.create(user=user, workspace="staging", role="Retired role")
    return user


def test_the_user_and_all_their_roles_come_in_one_query(
    person: User, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(1):
        user = user_with_roles_get(pk=person.pk)
        assert user is not None
        assert user.pk == person.pk
        assert user_roles(user) == {Role.EDITOR}
        assert user_roles(user, "production") == {Role.VIEWER}
        assert user_roles(user, "staging") == {Role.REVIEWER, Role.EDITOR}
        assert user_roles(user, "elsewhere") == {Role.EDITOR}
        assert user_workspaces_scoped(user) == {"production", "staging"}


def test_the_roles_read_with_the_user_are_those_read_on_their_own(person: User) -> None:
    user = user_with_roles_get(pk=person.pk)
    assert user is not None
    fresh = User.objects.get(pk=person.pk)  # no roles cached: user_roles reads them
    assert user_roles_fingerprint(user) == user_roles_fingerprint(fresh)
    assert "Newsletter readers" not in user_roles_fingerprint(user)


def test_someone_without_roles_has_none_and_no_one_is_no_user(db: None) -> None:
    user = user_with_roles_get(pk=user_with_role(None).pk)
    assert user is not None
    assert user_roles(user) == frozenset()
    assert user_workspaces_scoped(user) == frozenset()
    assert user_with_roles_get(pk=10**9) is None


@pytest.mark.parametrize("backend", [LocalPasswordBackend, OidcBackend])
def test_each_request_s_user_comes_with_their_roles(
    backend: type[LocalPasswordBackend | OidcBackend],
    person: User,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with django_assert_num_queries(1):
        user = backend().get_user(str(person.pk))  # the session keeps the key as text
        assert user is not None
        assert user_roles(user, "staging") == {Role.REVIEWER, Role.EDITOR}


def test_a_deactivated_account_signed_in_with_a_password_is_no_longer_anyone(
    person: User,
) -> None:
    person.is_active = False
    person.save(update_fields=["is_active"])
    assert LocalPasswordBackend().get_user(person.pk) is None
