from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from console.roles import Role
from tests.factories import user_with_role


@pytest.fixture
def client_for(db: None) -> Callable[[Role | None], Client]:
    """A signed-in test client for a fresh user with the given role (None: no role)."""

    def make(role: Role | None) -> Client:
        client = Client()
        client.force_login(user_with_role(role))
        return client

    return make


@pytest.fixture
def editor(db: None) -> User:
    return user_with_role(Role.EDITOR)


@pytest.fixture
def reviewer(db: None) -> User:
    return user_with_role(Role.REVIEWER)
