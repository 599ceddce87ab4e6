import datetime as dt
from typing import ClassVar, TypeVar

from django.contrib.auth.models import User
from django.db import models
from django.db.models.expressions import Combinable

_D = TypeVar("_D", bound=Device)

class DeviceManager(models.Manager[_D]):
    def devices_for_user(self, user: User, confirmed: bool | None = ...) -> models.QuerySet[_D]: ...

class Device(models.Model):
    class Meta:
        abstract: ClassVar[bool]

    user: models.ForeignKey[User | Combinable, User]
    user_id: int
    name: models.CharField[str | int | Combinable, str]
    confirmed: models.BooleanField[bool | Combinable, bool]

    @property
    def persistent_id(self) -> str: ...
    def verify_is_allowed(self) -> tuple[bool, dict[str, object] | None]: ...
    def verify_token(self, token: str) -> bool: ...

class ThrottlingMixin(models.Model):
    class Meta:
        abstract: ClassVar[bool]

    throttling_failure_timestamp: models.DateTimeField[
        str | dt.datetime | dt.date | Combinable | None, dt.datetime | None
    ]
    throttling_failure_count: models.PositiveIntegerField[int | Combinable, int]

class TimestampMixin(models.Model):
    class Meta:
        abstract: ClassVar[bool]

    created_at: models.DateTimeField[
        str | dt.datetime | dt.date | Combinable | None, dt.datetime | None
    ]
    last_used_at: models.DateTimeField[
        str | dt.datetime | dt.date | Combinable | None, dt.datetime | None
    ]
    def set_last_used_timestamp(self, commit: bool = ...) -> None: ...
