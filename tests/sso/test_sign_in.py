"""Signing in through a real OpenID Connect provider (a local process): what the console
accepts, the roles it gives, and every way an answer is refused."""

import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.roles import Role, user_roles
from sso.models import SsoIdentity
from tests.fixtures.oidc import CLIENT_ID, Provider
from tests.sso.conftest import authorize_params, provider_sign_in


def _signed_in_user(client: Client) -> User | None:
    pk = client.session.get(SESSION_KEY)
    return User.objects.get(pk=pk) if pk else None


def test_the_authorization_request_uses_pkce_a_nonce_and_a_state(sso: Provider) -> None:
    params = authorize_params(Client())
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) >= 43
    assert len(params["nonce"]) >= 32
    assert len(params["state"]) >= 32
    assert "client_secret" not in params


def test_a_first_sign_in_creates_the_user_with_the_roles_of_their_groups(sso: Provider) -> None:
    client = Client()
    response = provider_sign_in(client, sso, "alice")

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    user = _signed_in_user(client)
    assert user is not None
    assert user.username == "alice"
    assert user.email == "alice@example.com"
    assert not user.has_usable_password()
    assert user_roles(user) == {Role.EDITOR}
    assert SsoIdentity.objects.get(user=user).subject == "alice"
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-3:] == ["sso.user_created", "sso.roles_changed", "auth.sign_in"]
    change = AuditEntry.objects.get(action="sso.roles_changed")
    assert change.actor_name == "identity provider"
    assert change.data == {"before": [], "after": ["Editor"]}
    assert client.get(reverse("home")).status_code == 200


def test_after_signing_in_the_person_arrives_where_they_were_going(sso: Provider) -> None:
    client = Client()
    response = provider_sign_in(client, sso, "alice", query="?next=/changes/")
    assert response["Location"] == "/changes/"
    # Never to another site.
    response = provider_sign_in(Client(), sso, "alice", query="?next=https://evil.example/")
    assert response["Location"] == reverse("home")


def test_roles_are_evaluated_again_at_every_sign_in_and_each_change_is_audited(
    sso: Provider,
) -> None:
    provider_sign_in(Client(), sso, "alice")
    sso.person_set("alice", email="alice@example.com", groups=["console-admins", "everyone"])

    client = Client()
    provider_sign_in(client, sso, "alice")

    user = _signed_in_user(client)
    assert user is not None
    assert user_roles(user) == {Role.ADMIN}
    changes = AuditEntry.objects.filter(action="sso.roles_changed").order_by("seq")
    assert [c.data for c in changes] == [
        {"before": [], "after": ["Editor"]},
        {"before": ["Editor"], "after": ["Admin"]},
    ]
    # The same groups again: no change, no entry.
    provider_sign_in(Client(), sso, "alice")
    assert AuditEntry.objects.filter(action="sso.roles_changed").count() == 2


def test_a_person_whose_groups_grant_no_role_is_refused_with_a_clear_page(sso: Provider) -> None:
    client = Client()
    response = provider_sign_in(client, sso, "carol")

    assert response.status_code == 403
    assert "in no group that grants a role" in response.content.decode()
    assert _signed_in_user(client) is None
    assert not User.objects.filter(username="carol").exists()


def test_a_known_person_whose_groups_no_longer_grant_a_role_loses_them_and_is_refused(
    sso: Provider,
) -> None:
    provider_sign_in(Client(), sso, "alice")
    sso.person_set("alice", email="alice@example.com", groups=["everyone"])

    client = Client()
    response = provider_sign_in(client, sso, "alice")

    assert response.status_code == 403
    assert _signed_in_user(client) is None
    assert user_roles(User.objects.get(username="alice")) == frozenset()
    last = AuditEntry.objects.filter(action="sso.roles_changed").order_by("-seq").first()
    assert last is not None
    assert last.data == {"before": ["Editor"], "after": []}


def test_a_person_whose_console_account_was_deactivated_is_refused(sso: Provider) -> None:
    provider_sign_in(Client(), sso, "alice")
    User.objects.filter(username="alice").update(is_active=False)

    client = Client()
    response = provider_sign_in(client, sso, "alice")

    assert response.status_code == 403
    assert "deactivated" in response.content.decode()
    assert _signed_in_user(client) is None


def _refused_token(now: int, skew: int) -> dict[str, dict[str, object]]:
    return {
        "wrong audience": {"set_claims": {"aud": "another-client"}},
        "wrong issuer": {"set_claims": {"iss": "http://127.0.0.1:9/another-issuer"}},
        "expired beyond the clock skew": {
            "set_claims": {"exp": now - skew - 30, "iat": now - 3600}
        },
        "bad signature": {"sign_with": "stranger"},
        "signed with the client secret (HS256)": {"sign_with": "client-secret"},
        "missing nonce": {"drop": ("nonce",)},
        "another nonce": {"set_claims": {"nonce": "not-the-one-sent"}},
        "no expiry": {"drop": ("exp",)},
        "issued in the future beyond the clock skew": {"set_claims": {"iat": now + skew + 60}},
        "no subject": {"drop": ("sub",)},
    }


@pytest.mark.parametrize("case", list(_refused_token(0, 0)))
def test_an_id_token_that_fails_verification_is_refused(
    sso: Provider, settings: Settings, case: str
) -> None:
    sso.id_tokens(**_refused_token(int(time.time()), settings.OIDC_CLOCK_SKEW_SECONDS)[case])  # type: ignore[arg-type]
    client = Client()

    response = provider_sign_in(client, sso, "alice")

    assert response.status_code == 403
    assert "could not be verified" in response.content.decode()
    assert _signed_in_user(client) is None
    assert not User.objects.filter(username="alice").exists()


def test_an_es256_token_signed_with_a_key_of_the_providers_jwks_is_accepted(
    sso: Provider,
) -> None:
    sso.id_tokens(sign_with="ec")
    client = Client()

    assert provider_sign_in(client, sso, "alice").status_code == 302
    assert _signed_in_user(client) is not None


def test_a_token_expired_by_less_than_the_clock_skew_is_accepted(
    sso: Provider, settings: Settings
) -> None:
    settings.OIDC_CLOCK_SKEW_SECONDS = 60
    now = int(time.time())
    sso.id_tokens(set_claims={"exp": now - 20, "iat": now - 600})
    client = Client()

    assert provider_sign_in(client, sso, "alice").status_code == 302
    assert _signed_in_user(client) is not None


def test_a_replayed_callback_is_refused(sso: Provider) -> None:
    client = Client()
    start = client.get(reverse("sso:start"))
    import httpx

    back = httpx.post(start["Location"], data={"sub": "alice"}, follow_redirects=False)
    callback = back.headers["location"]
    assert client.get(callback).status_code == 302
    client.logout()

    # The same state again, in the session that started it and in another one.
    replay = client.get(callback)
    assert replay.status_code == 403
    assert "already used or has expired" in replay.content.decode()
    assert _signed_in_user(client) is None
    other = Client()
    other.get(reverse("sso:start"))
    assert other.get(callback).status_code == 403
    assert _signed_in_user(other) is None


def test_a_callback_without_a_sign_in_started_is_refused(sso: Provider) -> None:
    response = Client().get(reverse("sso:callback") + "?code=abc&state=xyz")
    assert response.status_code == 403


def test_a_denial_at_the_provider_is_shown(sso: Provider) -> None:
    client = Client()
    state = authorize_params(client)["state"]
    response = client.get(reverse("sso:callback") + f"?error=access_denied&state={state}")
    assert response.status_code == 403
    assert "did not sign you in" in response.content.decode()


def test_without_single_sign_on_its_urls_send_people_to_the_password_form(db: None) -> None:
    for name in ("sso:start", "sso:callback"):
        response = Client().get(reverse(name))
        assert response.status_code == 302
        assert response["Location"] == reverse("login")


def test_refused_sign_ins_through_the_provider_do_not_lock_others_out(
    sso: Provider, settings: Settings
) -> None:
    # People behind one address (an office) who are refused for their groups must not lock
    # out everyone else there: password lockouts are per username, and SSO has none.
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        assert provider_sign_in(Client(), sso, "carol").status_code == 403

    client = Client()
    assert provider_sign_in(client, sso, "alice").status_code == 302
    assert _signed_in_user(client) is not None
