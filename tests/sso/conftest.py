from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from tests.fixtures.oidc import Provider

if TYPE_CHECKING:  # the test client's response type exists in django-stubs only
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def provider_sign_in(
    client: Client, provider: Provider, sub: str, *, query: str = ""
) -> "TestResponse":
    """The whole authorization code flow: the console sends the browser to the provider, the
    person is chosen on the provider's page, and the provider sends the browser back."""
    start = client.get(reverse("sso:start") + query)
    assert start.status_code == 302, start
    authorize = start["Location"]
    assert authorize.startswith(provider.url + "/oauth2/authorize?")
    back = httpx.post(authorize, data={"sub": sub}, follow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    assert callback.path == reverse("sso:callback")
    return client.get(f"{callback.path}?{callback.query}")


def authorize_params(client: Client) -> dict[str, str]:
    start = client.get(reverse("sso:start"))
    return {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}


@pytest.fixture
def sso(oidc_provider: Provider, db: None) -> Provider:
    return oidc_provider
