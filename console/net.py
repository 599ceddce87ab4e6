"""Who is on the other end of a request: the one place the client address is derived.

Sign-in throttling (axes, through ``AXES_CLIENT_IP_CALLABLE``, and ``console/signin.py``) and
the audit trail's origin both call `client_ip`, so they can never disagree about a source.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(value: str) -> str | None:
    """The address in one X-Forwarded-For entry or REMOTE_ADDR, or None if it is not one.

    Proxies may append a port (``203.0.113.7:51234``, ``[2001:db8::1]:443``).
    """
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only as far as TRUSTED_PROXY_COUNT says.

    Each trusted proxy appends the address it received the request from, so with N proxies
    the client is the N-th entry from the right; everything left of it was written by the
    client and is ignored. A request carrying fewer entries than that did not come through
    every proxy, so only the peer address (REMOTE_ADDR) is known.
    """
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [entry for entry in header.split(",") if entry.strip()]
    if len(entries) < trusted:
        return remote
    return _address(entries[-trusted]) or remote
