# The part of django-otp (untyped) the console uses, so mfa/ is checked with --strict's flags.
from django.http import HttpRequest
from django_otp.models import Device

DEVICE_ID_SESSION_KEY: str

def login(request: HttpRequest, device: Device) -> None: ...
