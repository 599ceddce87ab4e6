"""The API key and SCIM token never show up in logs, exceptions, reprs or pages."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import httpx
import pytest

from console.braze.client import RetryPolicy
from console.braze.errors import BrazeError, describe_error
from tests.console.braze.helpers import make_client, make_limits

KEY = "sk-live-TOPSECRET-0123456789abcdef"
TOKEN = "scim-TOPSECRET-fedcba9876543210"


def test_no_secret_in_logs_errors_reprs_or_tracebacks(
    braze_sandbox: Any,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    braze_sandbox.admin.create_key(["catalogs.get"], key=KEY)
    braze_sandbox.admin.set_injection(error_rate=1.0, error_status=503, groups=["default"])
    client = make_client(
        base_url=braze_sandbox.url,
        api_key=KEY,
        scim_token=TOKEN,
        limits=make_limits(),
        prefix=prefix,
        retry=RetryPolicy(attempts=2, backoff_base=0.001),
    )
    texts = [repr(client), repr(client._http), repr(client._rest_auth), str(vars(client))]
    assert client.catalog_list()
    for call in (
        client.content_block_list,  # 403: the key lacks the permission
        client.email_template_list,  # 503 (injected), retried, then an error
        lambda: client.scim_user_get(user_id="x"),  # 401: unknown SCIM token
    ):
        try:
            call()
        except BrazeError as exc:
            texts += [
                str(exc),
                repr(exc),
                describe_error(exc),
                "".join(traceback.format_exception(exc)),
            ]
    try:
        make_client(
            base_url="http://127.0.0.1:9", api_key=KEY, limits=make_limits(), prefix=prefix
        ).catalog_list()
    except BrazeError as exc:
        texts += [repr(exc), "".join(traceback.format_exception(exc))]
    captured = capsys.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    blob = "\n".join(texts)
    assert KEY not in blob
    assert TOKEN not in blob
    assert "TOPSECRET" not in blob
    assert len(texts) >= 12  # every failure path above produced something to inspect


def test_the_key_is_sent_only_as_a_bearer_header_added_per_request(prefix: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"catalogs": []})

    client = make_client(
        base_url="https://rest.iad-03.braze.com", api_key=KEY, limits=make_limits(), prefix=prefix
    )
    client._http._transport = httpx.MockTransport(handler)
    client.catalog_list()
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in client._http.headers
    assert KEY not in repr(seen[0].headers)
