"""Single sign-on is configured from the environment: the role mapping's form, and the
client secret among the secrets every log, audit entry and error report masks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.roles import Role
from console.secrets import secret_values
from sso.config import role_mapping_parse, roles_from_groups
from tests.fixtures.oidc import Provider
from tests.sso.conftest import provider_sign_in


def test_the_role_mapping_pairs_groups_with_console_roles() -> None:
    pairs = role_mapping_parse(" staff=Viewer, braze-admins=Admin\nbraze-admins=Auditor,")
    assert [(p.group, p.role) for p in pairs] == [
        ("staff", Role.VIEWER),
        ("braze-admins", Role.ADMIN),
        ("braze-admins", Role.AUDITOR),
    ]


@pytest.mark.parametrize("spec", ["staff", "staff=Superuser", "=Admin", "staff=admin"])
def test_a_malformed_role_mapping_is_refused_with_its_entry_named(spec: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="OIDC_ROLE_MAP"):
        role_mapping_parse(spec)


def test_groups_grant_the_union_of_their_roles_and_nothing_else(settings: Settings) -> None:
    settings.OIDC_ROLE_MAP = "a=Viewer,b=Editor,b=Reviewer"
    assert roles_from_groups(["b", "a", "c"]) == {Role.VIEWER, Role.EDITOR, Role.REVIEWER}
    assert roles_from_groups("a") == {Role.VIEWER}
    assert roles_from_groups(["c"]) == frozenset()
    # A claim of the wrong shape grants nothing rather than failing the sign-in.
    assert roles_from_groups(None) == frozenset()
    assert roles_from_groups({"a": True}) == frozenset()
    assert roles_from_groups([["a"]]) == frozenset()


def test_the_client_secret_is_masked_like_every_other_secret(settings: Settings) -> None:
    settings.OIDC_RP_CLIENT_SECRET = "a-client-secret-from-the-idp"
    assert "a-client-secret-from-the-idp" in secret_values()


def test_sso_pages_keep_the_security_headers(sso: Provider) -> None:
    refused = provider_sign_in(Client(), sso, "carol")
    start = Client().get(reverse("sso:start"))
    for response in (refused, start):
        assert "no-store" in response["Cache-Control"]
        assert response["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    csp = refused["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp
    # Sign-out is a form whose answer redirects to the provider: its origin, and no other.
    assert f"form-action 'self' {sso.url};" in csp


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django.conf as c, json; s = c.settings; "
        "print(json.dumps([s.OIDC_ISSUER, s.SECURE_CSP['form-action']]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_environment_turns_single_sign_on_on_and_lets_forms_reach_the_provider() -> None:
    result = _settings_in_a_fresh_process(
        OIDC_ISSUER="https://idp.example.com/oauth2/default",
        OIDC_CLIENT_ID="console",
        OIDC_CLIENT_SECRET="a-client-secret-from-the-idp",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "https://idp.example.com/oauth2/default",
        ["'self'", "https://idp.example.com"],
    ]


def test_an_issuer_without_client_credentials_is_refused_at_start() -> None:
    result = _settings_in_a_fresh_process(OIDC_ISSUER="https://idp.example.com")
    assert result.returncode != 0
    assert "OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET" in result.stderr
