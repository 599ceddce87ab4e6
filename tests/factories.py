"""All test factories live here."""

from typing import Any

import factory
from django.contrib.auth.models import User

from console.roles import Role
from console.services import user_set_roles

TEST_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            user_set_roles(user=self, roles=set(extracted))


def user_with_role(role: Role | None, **kwargs: Any) -> User:
    return UserFactory(roles=[role] if role else [], **kwargs)
