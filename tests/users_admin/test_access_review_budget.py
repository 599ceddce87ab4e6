"""The access review's SCIM look-ups: never in the request, against a daily budget of their
own (a share of the company's 5,000 SCIM calls a day), with partial results shown."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.roles import Role
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle
from users_admin import tasks
from users_admin.selectors import access_review_budget_key
from users_admin.services import access_review_lookup

pytestmark = pytest.mark.django_db

EMAILS = ["mark.eting@example.com", "pam.manager@example.com", "nobody@example.com"]


@pytest.fixture(autouse=True)
def _fresh_budget() -> None:
    cache.delete(access_review_budget_key())


@pytest.fixture
def auditor() -> User:
    return user_with_role(Role.AUDITOR, username="audra", email="audra@example.com")


@pytest.fixture
def client(auditor: User) -> Client:
    client = Client()
    client.force_login(auditor)
    return client


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, str]]:
    """Tasks sent to the broker (not run): the request must not do their work itself."""
    sent: list[tuple[int, str, str]] = []
    monkeypatch.setattr(tasks.access_review_lookup_task, "delay", lambda *a: sent.append(a))
    return sent


def _scim_calls(braze: SandboxHandle, since: float) -> int:
    return sum(1 for e in braze.admin.log(since=since) if "/scim/" in e["path"])


def _page(client: Client, token: str) -> str:
    return client.get(reverse("users_admin:access_review"), {"run": token}).content.decode()


def test_the_request_queues_the_look_up_and_makes_no_scim_call(
    client: Client, scim_sandbox: SandboxHandle, queued: list[tuple[int, str, str]], auditor: User
) -> None:
    since = time.time()
    response = client.post(reverse("users_admin:access_review"), {"emails": "\n".join(EMAILS)})
    assert response.status_code == 302
    token = parse_qs(urlsplit(response["Location"]).query)["run"][0]
    # By ids and the workspace's key: the run is read with that workspace's SCIM token.
    assert queued == [(auditor.pk, token, "default")]
    page = _page(client, token)
    assert "Looking up: 0 of 3 emails so far." in page
    assert 'hx-trigger="every 2s"' in page  # the page follows the worker
    assert page.count("not looked up yet") == 3
    # Neither the request nor the page nor an export asked Braze anything.
    export = client.post(reverse("users_admin:access_review_export"), {"run": token})
    b"".join(export.streaming_content)  # type: ignore[attr-defined]
    assert _scim_calls(scim_sandbox, since) == 0

    access_review_lookup(user_id=auditor.pk, token=token)  # what the worker does
    assert _scim_calls(scim_sandbox, since) == 3
    page = _page(client, token)
    assert "Looked up all 3 emails." in page
    assert "Mark Eting" in page
    assert "every 2s" not in page


def test_the_look_ups_stop_at_the_daily_budget_and_continue_the_next_day(
    client: Client,
    scim_sandbox: SandboxHandle,
    queued: list[tuple[int, str, str]],
    auditor: User,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.ACCESS_REVIEW_SCIM_CALLS_PER_DAY = 2
    since = time.time()
    response = client.post(reverse("users_admin:access_review"), {"emails": "\n".join(EMAILS)})
    token = parse_qs(urlsplit(response["Location"]).query)["run"][0]

    access_review_lookup(user_id=auditor.pk, token=token)
    assert _scim_calls(scim_sandbox, since) == 2
    page = _page(client, token)
    assert "Looked up 2 of 3 emails: today's share of SCIM calls" in page
    assert page.count("not looked up yet") == 1  # partial results are shown
    assert "Continue the look-up" in page

    # Continuing the same day spends nothing more.
    client.post(reverse("users_admin:access_review"), {"action": "continue", "run": token})
    access_review_lookup(user_id=auditor.pk, token=token)
    assert _scim_calls(scim_sandbox, since) == 2

    # The next day (UTC) has a fresh budget: only the email left is looked up.
    tomorrow = time.gmtime(time.time() + 86400)
    monkeypatch.setattr(time, "gmtime", lambda *a: tomorrow)
    cache.delete(access_review_budget_key())
    client.post(reverse("users_admin:access_review"), {"action": "continue", "run": token})
    access_review_lookup(user_id=auditor.pk, token=token)
    assert _scim_calls(scim_sandbox, since) == 3
    assert "Looked up all 3 emails." in _page(client, token)


def test_a_run_belongs_to_the_person_who_asked_for_it(
    client: Client, queued: list[tuple[int, str, str]], client_for: object
) -> None:
    response = client.post(reverse("users_admin:access_review"), {"emails": EMAILS[0]})
    token = parse_qs(urlsplit(response["Location"]).query)["run"][0]
    other = Client()
    other.force_login(user_with_role(Role.AUDITOR))
    page = other.get(reverse("users_admin:access_review"), {"run": token}).content.decode()
    assert "That look-up has expired" in page
    assert EMAILS[0] not in page
