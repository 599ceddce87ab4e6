"""Sessions signed in through the provider: sign-out ends the provider's session too, they
last at most SSO_SESSION_MAX_AGE, and an account the provider disables loses access at the
next re-validation. Every session is bound to the way it was signed in."""

from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.sessions import SIGNED_IN_AT
from sso.backends import REFRESH_TOKEN
from tests.fixtures.oidc import CLIENT_ID, Provider, provider_running, sso_settings
from tests.sso.conftest import provider_sign_in


def _signed_in(sso: Provider, sub: str = "alice") -> Client:
    client = Client()
    assert provider_sign_in(client, sso, sub).status_code == 302
    return client


def _sent_to_sign_in(client: Client) -> bool:
    response = client.get(reverse("home"))
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


def _ended_reasons() -> list[str]:
    entries = AuditEntry.objects.filter(action="auth.session_ended").order_by("seq")
    return [entry.data["reason"] for entry in entries]


def test_sign_out_ends_the_console_session_and_then_the_providers(sso: Provider) -> None:
    client = _signed_in(sso)

    response = client.post(reverse("logout"))

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{sso.url}/oauth2/end_session"
    )
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == ["http://testserver" + reverse("login")]
    assert query["id_token_hint"][0].count(".") == 2
    assert SESSION_KEY not in client.session
    assert _sent_to_sign_in(client)
    assert AuditEntry.objects.filter(action="auth.sign_out").count() == 1


def test_sign_out_of_a_password_session_stays_in_the_console(sso: Provider, admin_user) -> None:
    client = Client()
    client.force_login(admin_user, backend="sso.backends.LocalPasswordBackend")

    response = client.post(reverse("logout"))

    assert response["Location"] == reverse("login")


def test_sign_out_needs_a_post(sso: Provider) -> None:
    client = _signed_in(sso)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("home")).status_code == 200


def test_an_account_the_provider_disables_loses_access_at_the_next_revalidation(
    sso: Provider, settings: Settings
) -> None:
    settings.OIDC_REVALIDATE_SECONDS = 0
    client = _signed_in(sso)
    # Still good at the provider: re-validated, and the session goes on.
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("home")).status_code == 200

    sso.tokens_revoke("alice")

    assert _sent_to_sign_in(client)
    assert _ended_reasons() == ["idp_revoked"]


def test_between_revalidations_the_provider_is_not_asked(sso: Provider, settings: Settings) -> None:
    settings.OIDC_REVALIDATE_SECONDS = 3600
    client = _signed_in(sso)
    sso.tokens_revoke("alice")

    assert client.get(reverse("home")).status_code == 200


def test_an_sso_session_ends_after_its_maximum_age(sso: Provider, settings: Settings) -> None:
    settings.SSO_SESSION_MAX_AGE = 3600
    client = _signed_in(sso)
    assert client.get(reverse("home")).status_code == 200
    session = client.session
    session[SIGNED_IN_AT] = session[SIGNED_IN_AT] - 3601
    session.save()

    assert _sent_to_sign_in(client)
    assert _ended_reasons() == ["sso_expired"]


def test_an_sso_session_ends_once_single_sign_on_is_turned_off(
    sso: Provider, settings: Settings
) -> None:
    client = _signed_in(sso)
    settings.OIDC_ISSUER = ""

    assert _sent_to_sign_in(client)
    assert _ended_reasons() == ["method_off"]


def test_without_a_refresh_token_the_userinfo_endpoint_revalidates(
    sso: Provider, settings: Settings
) -> None:
    settings.OIDC_REVALIDATE_SECONDS = 0
    client = _signed_in(sso)
    session = client.session
    session[REFRESH_TOKEN] = None
    session.save()
    assert client.get(reverse("home")).status_code == 200

    sso.tokens_revoke("alice")

    assert _sent_to_sign_in(client)
    assert _ended_reasons() == ["idp_revoked"]


def test_a_provider_that_cannot_be_reached_signs_nobody_out(db: None, settings: Settings) -> None:
    with provider_running() as provider:
        sso_settings(settings, provider)
        client = _signed_in(provider)
    settings.OIDC_REVALIDATE_SECONDS = 0

    assert client.get(reverse("home")).status_code == 200
    assert _ended_reasons() == []
