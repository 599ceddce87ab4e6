from django.db import models
from django.db.models.expressions import Combinable
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

class TOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    key: models.CharField[str | int | Combinable, str]
    step: models.PositiveSmallIntegerField[int | Combinable, int]
    t0: models.BigIntegerField[int | Combinable, int]
    digits: models.PositiveSmallIntegerField[int | Combinable, int]
    tolerance: models.PositiveSmallIntegerField[int | Combinable, int]
    drift: models.SmallIntegerField[int | Combinable, int]
    last_t: models.BigIntegerField[int | Combinable, int]

    @property
    def bin_key(self) -> bytes: ...
    @property
    def config_url(self) -> str: ...
