"""Optional error reporting: off by default, and nothing secret or personal leaves the host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
import structlog
from django.conf import settings
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from console.error_reporting import before_send, error_reporting_init
from tests.fixtures.canary import CANARIES

EMAIL = "ada.lovelace@example.com"


def test_error_reporting_is_off_unless_a_dsn_is_set() -> None:
    assert settings.SENTRY_DSN == ""
    assert not sentry_sdk.get_client().is_active()
    assert error_reporting_init(dsn="") is False
    assert not sentry_sdk.get_client().is_active()


def _event() -> dict[str, Any]:
    key, token = CANARIES.api_key, CANARIES.scim_token
    return {
        "message": f"Braze refused key {key} for {EMAIL}",
        "user": {"id": 7, "email": EMAIL, "username": "ada", "ip_address": "203.0.113.9"},
        "request": {
            "url": "https://console.example/users/",
            "query_string": f"q={EMAIL}",
            "headers": {
                "Authorization": f"Bearer {token}",
                "Cookie": "sessionid=abc123; csrftoken=def456",
                "User-Agent": "test",
            },
            "cookies": {"sessionid": "abc123"},
            "data": {"first_name": "Ada", "last_name": "Lovelace", "note": "hello"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "exception": {
            "values": [
                {
                    "type": "BrazeError",
                    "value": f"401 for {key}",
                    "stacktrace": {
                        "frames": [{"function": "send", "vars": {"secret": "x", "user": "Ada"}}]
                    },
                }
            ]
        },
        "extra": {
            "api_key": key,
            "settings": {
                "SECRET_KEY": settings.SECRET_KEY,
                "AUDIT_CHAIN_KEY": settings.AUDIT_CHAIN_KEY,
            },
            "checkpoint_key": settings.AUDIT_CHECKPOINT_KEY,
            "full_name": "Ada Lovelace",
        },
        "breadcrumbs": {
            "values": [{"message": f"GET /scim/v2/Users with {token} by ada", "category": "httpx"}]
        },
        "sdk": {"name": "sentry.python", "version": "2"},
    }


def test_before_send_removes_secrets_and_personal_data_but_keeps_the_user_id() -> None:
    with structlog.contextvars.bound_contextvars(actor="ada", request_id="r-1", ip="203.0.113.9"):
        scrubbed = before_send(_event(), {})
    text = json.dumps(scrubbed)
    secrets = (CANARIES.api_key, CANARIES.scim_token, settings.SECRET_KEY, settings.AUDIT_CHAIN_KEY)
    for secret in secrets:
        assert secret not in text
    assert settings.AUDIT_CHECKPOINT_KEY not in text
    for personal in (EMAIL, "Ada", "Lovelace", "203.0.113.9", "abc123", " ada"):
        assert personal not in text, personal
    assert scrubbed["user"] == {"id": 7}
    assert scrubbed["tags"] == {"request_id": "r-1"}
    assert scrubbed["request"]["headers"]["User-Agent"] == "test"
    assert scrubbed["request"]["query_string"] == "q=[email]"
    assert scrubbed["exception"]["values"][0]["value"] == "401 for [redacted]"
    assert scrubbed["message"] == "Braze refused key [redacted] for [email]"
    assert scrubbed["sdk"] == {"name": "sentry.python", "version": "2"}


class _Capture(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.sent: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.sent.append(envelope.serialize())


@pytest.fixture
def reporting() -> Iterator[_Capture]:
    transport = _Capture()
    assert error_reporting_init(
        dsn="https://public@errors.example/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    yield transport
    sentry_sdk.get_global_scope().set_client(None)


def test_a_reported_exception_leaves_without_secrets_or_personal_data(
    reporting: _Capture,
) -> None:
    with structlog.contextvars.bound_contextvars(actor="ada", user_id=7, request_id="r-2"):
        sentry_sdk.add_breadcrumb(message=f"sent {CANARIES.scim_token} for {EMAIL}")
        try:
            raise RuntimeError(f"Braze refused {CANARIES.api_key} for {EMAIL} (user ada)")
        except RuntimeError as exc:
            sentry_sdk.capture_exception(exc)
    sentry_sdk.flush()
    (envelope,) = reporting.sent
    assert b"RuntimeError" in envelope
    for value in (CANARIES.api_key, CANARIES.scim_token, EMAIL, "user ada"):
        assert value.encode() not in envelope, value
    assert b'"request_id":"r-2"' in envelope
    assert b'"user":{"id":7}' in envelope
