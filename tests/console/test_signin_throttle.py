"""Sign-in throttling and the audit of failed sign-ins (console/signin.py, console/net.py)."""

import time

import pytest
from axes.models import AccessAttempt
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
from console.roles import Role
from console.signin import (
    FAILED,
    FAILED_REPEATEDLY,
    _window,
    signin_failures_record,
    signin_refusals_flush,
)
from tests.factories import TEST_PASSWORD, totp_code, totp_device_create, user_with_role

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"
FAILURES = (FAILED, FAILED_REPEATEDLY)


def _sign_in(client: Client, username: str, password: str) -> int:
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code


def _behind_proxy(forwarded_for: str) -> Client:
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)


def _record_finished_windows(settings: Settings) -> None:
    signin_refusals_flush()  # what the process does within a second, or at exit
    signin_failures_record(now=time.time() + settings.SIGNIN_WINDOW_SECONDS)


def _attempts_in_trail() -> int:
    """Failed sign-ins the trail accounts for: one per entry of its own, plus the sums."""
    total = 0
    for entry in AuditEntry.objects.filter(action__in=FAILURES):
        total += entry.data["attempts"] if entry.action == FAILED_REPEATEDLY else 1
    return total


@pytest.mark.slow  # 10,000 requests through the whole stack: about 15 s on an idle machine
def test_ten_thousand_failed_sign_ins_from_one_source_add_a_bounded_number_of_entries(
    settings: Settings,
) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    first_window = _window()
    before = AuditEntry.objects.count()
    with CaptureQueriesContext(connection) as queries:
        for i in range(10_000):
            status = _sign_in(client, f"someone-{i % 97}", "wrong")
            assert status in {200, 429}
            if i % 500 == 499:  # fail early rather than after minutes on an unbounded trail
                assert AuditEntry.objects.count() - before <= 2 * (_window() - first_window + 1)
        throttled_from = len(queries.captured_queries)
        for _ in range(200):
            assert _sign_in(client, "someone-else", "wrong") == 429
        refused_queries = queries.captured_queries[throttled_from:]
    windows = _window() - first_window + 1
    # The cluster-wide chain lock, which every approval also waits for, was taken at most
    # once per window by the flood; once throttled, an attempt touches no database at all.
    chain_locks = [q for q in queries.captured_queries if "pg_advisory_xact_lock" in q["sql"]]
    assert len(chain_locks) <= windows
    assert refused_queries == []
    # Axes saw only the attempts that reached authentication.
    assert sum(a.failures_since_start for a in AccessAttempt.objects.all()) <= 30 * windows

    _record_finished_windows(settings)
    assert AuditEntry.objects.count() - before <= 2 * windows
    assert _attempts_in_trail() == 10_200
    summary = AuditEntry.objects.filter(action=FAILED_REPEATEDLY).latest("seq")
    assert summary.ip == "203.0.113.9"
    assert summary.outcome == "failure"
    assert set(summary.data) == {"attempts", "window_start", "window_end"}


def test_behind_a_proxy_the_client_is_the_address_the_proxy_appended(
    settings: Settings,
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    admin = user_with_role(Role.ADMIN)
    app = totp_device_create(admin)
    for i in range(5):
        # The first entry is the attacker's own invention and changes every time.
        attacker = _behind_proxy(f"192.0.2.{i}, 203.0.113.66")
        assert _sign_in(attacker, admin.username, "wrong") == (200 if i < 4 else 429)
    assert _sign_in(_behind_proxy("192.0.2.99, 203.0.113.66"), admin.username, TEST_PASSWORD) == 429
    # The same Admin, from their own address behind the same proxy, is not locked out.
    own = _behind_proxy("198.51.100.7")
    assert _sign_in(own, admin.username, TEST_PASSWORD) == 302
    assert own.post(reverse("mfa:verify"), {"code": totp_code(app)})["Location"] == reverse("home")

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.66"}
    failed = AuditEntry.objects.get(action=FAILED)
    assert failed.ip == "203.0.113.66"
    signed_in = AuditEntry.objects.get(action="auth.sign_in")
    assert signed_in.ip == "198.51.100.7"


def test_without_trusted_proxies_x_forwarded_for_is_ignored(settings: Settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    user = user_with_role(Role.VIEWER)
    for i in range(5):
        client = Client(REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
        _sign_in(client, user.username, "wrong")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    assert AuditEntry.objects.get(action=FAILED).ip == "203.0.113.5"


def test_spraying_many_usernames_from_one_address_is_throttled_before_authentication(
    settings: Settings,
) -> None:
    settings.SIGNIN_IP_FAILURE_LIMIT = 30
    victim = user_with_role(Role.EDITOR)
    sprayer = Client(REMOTE_ADDR="203.0.113.77")
    for i in range(30):
        assert _sign_in(sprayer, f"guess-{i}", "Summer2026!") == 200
    # The next guess is refused before the password is looked at, even a right one...
    assert _sign_in(sprayer, victim.username, TEST_PASSWORD) == 429
    assert "_auth_user_id" not in sprayer.session
    # ...while the account itself is fine from anywhere else.
    assert _sign_in(Client(REMOTE_ADDR="198.51.100.8"), victim.username, TEST_PASSWORD) == 302


def test_past_the_global_limit_only_addresses_that_have_failed_are_refused(
    settings: Settings,
) -> None:
    settings.SIGNIN_GLOBAL_FAILURE_LIMIT = 10
    user = user_with_role(Role.VIEWER)
    for i in range(10):
        _sign_in(Client(REMOTE_ADDR=f"203.0.113.{i}"), user.username, "wrong")
    assert _sign_in(Client(REMOTE_ADDR="203.0.113.3"), user.username, TEST_PASSWORD) == 429
    assert _sign_in(Client(REMOTE_ADDR="198.51.100.9"), user.username, TEST_PASSWORD) == 302


def test_many_sources_share_one_entry_past_the_per_window_cap(settings: Settings) -> None:
    settings.SIGNIN_AUDIT_SOURCES = 3
    for i in range(8):
        for _ in range(2):
            _sign_in(Client(REMOTE_ADDR=f"203.0.113.{i}"), "nobody", "wrong")
    assert AuditEntry.objects.filter(action=FAILED).count() == 3
    _record_finished_windows(settings)
    summaries = list(AuditEntry.objects.filter(action=FAILED_REPEATEDLY).order_by("seq"))
    # Sources 3-7 have two attempts not yet in the trail, 0-2 one: the three largest first.
    assert [(s.ip, s.data["attempts"]) for s in summaries[:3]] == [
        ("203.0.113.3", 2),
        ("203.0.113.4", 2),
        ("203.0.113.5", 2),
    ]
    assert len(summaries) == 4
    assert summaries[3].ip is None
    assert (summaries[3].data["attempts"], summaries[3].data["sources"]) == (7, 5)
    assert _attempts_in_trail() == 16


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        (0, "203.0.113.1", "192.0.2.1", "203.0.113.1"),
        (1, PROXY, "192.0.2.1, 203.0.113.1", "203.0.113.1"),
        (1, PROXY, "203.0.113.1:51234", "203.0.113.1"),
        (1, PROXY, "[2001:db8::1]:443", "2001:db8::1"),
        (2, PROXY, "192.0.2.1, 203.0.113.1, 10.0.0.1", "203.0.113.1"),
        # Fewer entries than trusted proxies: it did not come through them; the peer is known.
        (2, PROXY, "203.0.113.1", PROXY),
        (1, PROXY, "", PROXY),
        (1, PROXY, "not-an-address", PROXY),
    ],
)
def test_client_ip_trusts_only_the_entries_trusted_proxies_wrote(
    settings: Settings, trusted: int, remote: str, forwarded: str, expected: str
) -> None:
    from django.test import RequestFactory

    from console.net import client_ip

    settings.TRUSTED_PROXY_COUNT = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
