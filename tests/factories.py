"""All test factories live here."""

import time
from typing import Any, cast

import factory
from django.contrib.auth.models import User
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from catalogs.models import Catalog, CatalogItem
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
            # factory_boy calls post-generation hooks with the built model, not the factory.
            user_set_roles(user=cast(User, self), roles=set(extracted))


def user_with_role(role: Role | None, **kwargs: Any) -> User:
    return cast(User, UserFactory(roles=[role] if role else [], **kwargs))


PRODUCT_FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "price", "type": "number"},
    {"name": "in_stock", "type": "boolean"},
    {"name": "released_at", "type": "time"},
]


class CatalogFactory(factory.django.DjangoModelFactory[Catalog]):
    class Meta:
        model = Catalog

    name = factory.Sequence(lambda n: f"catalog_{n}")
    description = "Products"
    fields = factory.LazyFunction(lambda: [dict(f) for f in PRODUCT_FIELDS])


def catalog_item_create(catalog: Catalog, item_id: str, **data: Any) -> CatalogItem:
    """A mirrored item, written the way the sync writes it (search text included)."""
    from catalogs.services import catalog_item_mirror_write

    catalog_item_mirror_write(catalog=catalog, item_id=item_id, action="create", values=data)
    return CatalogItem.objects.get(catalog=catalog, item_id=item_id)


def totp_device_create(user: User, *, name: str = "Test app") -> TOTPDevice:
    """A confirmed authenticator app for `user` (django-otp makes a random key)."""
    return TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def totp_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the app shows now (or `steps_ahead` periods later), computed with
    django-otp's own TOTP from the key the console keeps."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def totp_code_unused(device: TOTPDevice) -> str:
    """The next code the app shows that the console has not accepted yet (it refuses a code
    at or before the last one accepted), waiting for it if it is not valid yet."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    step = max(totp.t(), device.last_t + 1)
    while step > totp.t() + device.tolerance:
        time.sleep(0.5)
        totp.time = time.time()
    totp.time = device.t0 + step * device.step
    return f"{totp.token():0{device.digits}d}"
