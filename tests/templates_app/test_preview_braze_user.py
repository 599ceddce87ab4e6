"""Previewing content as an existing Braze user, read by external id through
/users/export/ids for one answer: who may, what is audited and that nothing is kept."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.audit import events
from console.audit.models import AuditEntry, AuditPersonal
from console.braze import close_client
from console.roles import Role
from templates_app import kinds, services
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle

pytestmark = pytest.mark.usefixtures("braze")

GREETING = "<p>Hello {{${first_name} | default: 'friend'}}, {{custom_attribute.${tier}}}</p>"
# Maya's (customer-1001) values that no template here renders: if one of them turns up
# anywhere after a preview, her profile was kept.
UNRENDERED = ("Lindqvist", "Sixten", "maya.lindqvist@example.com", "5fa0c2d1e3b4a5968778a001")
LOOKUP_ROLES = {Role.EDITOR, Role.REVIEWER}


def _frame_urls(body: str) -> list[str]:
    return re.findall(r'<iframe class="preview-frame[^"]*" sandbox src="([^"]+)"', body)


def _lookups() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=events.PREVIEW_BRAZE_USER_LOOKUP).order_by("seq"))


def _personal(entry: AuditEntry) -> Any:
    return AuditPersonal.objects.get(entry=entry).data


def _block_id(braze: SandboxHandle, name: str = "greeting") -> str:
    with braze.client() as http:
        blocks = http.get("/content_blocks/list").json()["content_blocks"]
    return str(next(b["content_block_id"] for b in blocks if b["name"] == name))


def _redis_values() -> Iterator[bytes]:
    for url in {settings.PREVIEW_REDIS_URL, settings.REDIS_URL}:
        store = redis.Redis.from_url(url)
        for key in store.scan_iter(count=500):
            if store.type(key) == b"string":
                yield key + b"=" + (store.get(key) or b"")
        store.close()


def _database_text() -> str:
    """Every row of every table the console's models own, as text."""
    rows: list[str] = []
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            rows.extend(str(row) for row in model._default_manager.all().values())
    return "\n".join(rows)


def test_the_edit_form_previews_as_a_braze_user_and_audits_the_lookup(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle
) -> None:
    client = client_for(Role.EDITOR)

    response = client.post(
        reverse("templates_app:preview_as"),
        {
            "source": "content",
            "content": GREETING + "{{${language}}} {{${time_zone}}}",
            "external_id": "customer-1001",
        },
    )

    body = response.content.decode()
    assert "As Braze user customer-1001" in body
    assert "no-store" in response["Cache-Control"]
    desktop, mobile = _frame_urls(body)
    assert client.get(desktop).content.decode() == ("<p>Hello Maya, gold</p>sv Europe/Stockholm")
    assert client.get(mobile).status_code == 200
    [entry] = _lookups()
    assert (entry.outcome, entry.data) == ("success", {"found": True})
    assert _personal(entry) == {"external_id": "customer-1001"}
    assert "customer-1001" not in str(entry.data) + entry.resource_id
    [sent] = [e for e in braze.admin.log() if e["path"] == "/users/export/ids"]
    assert (sent["method"], sent["group"]) == ("POST", "users_export_ids")


def test_a_frame_for_a_braze_user_is_served_once_and_nothing_of_the_user_is_kept(
    client_for: Callable[[Role | None], Client], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caches["previews"].clear()  # other tests' previews of other people
    client = client_for(Role.EDITOR)

    body = client.post(
        reverse("templates_app:preview_as"),
        {"source": "content", "content": GREETING, "external_id": "customer-1001"},
    ).content.decode()
    for value in UNRENDERED:
        assert value.encode() not in b"\n".join(_redis_values())
    for url in _frame_urls(body):
        assert client.get(url).status_code == 200
        assert client.get(url).status_code == 404

    kept = b"\n".join(_redis_values())
    assert b"Maya" not in kept
    assert b"customer-1001" not in kept
    database = _database_text()
    for value in (*UNRENDERED, "Maya"):
        assert value not in database
        assert value not in caplog.text
    assert "customer-1001" not in caplog.text


def test_an_unknown_external_id_is_said_clearly_and_still_audited(
    client_for: Callable[[Role | None], Client],
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_as"),
        {"source": "content", "content": GREETING, "external_id": "nobody-9999"},
    )

    body = response.content.decode()
    assert "Braze has no user with this external ID in this workspace." in body
    assert "<iframe" not in body
    [entry] = _lookups()
    assert (entry.outcome, entry.data) == ("success", {"found": False})
    assert _personal(entry) == {"external_id": "nobody-9999"}


def test_a_braze_refusal_is_shown_in_words_with_braze_error_and_audited_as_failed(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle, settings: Settings
) -> None:
    settings.BRAZE_API_KEY = braze.admin.create_key(["content_blocks.list"])
    close_client()

    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_as"),
        {"source": "content", "content": GREETING, "external_id": "customer-1001"},
    )

    body = response.content.decode()
    assert "Braze could not be asked for this user." in body
    assert "users.export.ids" in body
    assert "Braze error: " in body
    [entry] = _lookups()
    assert entry.outcome == "failure"
    assert entry.data["error_ids"]
    assert _personal(entry) == {"external_id": "customer-1001"}


def test_an_empty_external_id_looks_no_one_up(
    client_for: Callable[[Role | None], Client],
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_as"),
        {"source": "content", "content": GREETING, "external_id": ""},
    )

    assert "Enter the user&#x27;s external ID" in response.content.decode()
    assert _lookups() == []


@pytest.mark.parametrize("role", [None, *Role])
def test_only_editors_and_reviewers_may_preview_a_content_page_as_a_braze_user(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle, role: Role | None
) -> None:
    block_id = _block_id(braze)
    braze.admin.edit_content_block(block_id, content=GREETING)
    client = client_for(role)

    page = client.get(reverse("templates_app:content_block_detail", args=[block_id]))
    response = client.post(
        reverse("templates_app:preview_as_braze_user", args=["content_block", block_id]),
        {"external_id": "customer-1002"},
    )

    lookup_url = reverse("templates_app:preview_as_braze_user", args=["content_block", block_id])
    if role in LOOKUP_ROLES:
        assert lookup_url in page.content.decode()
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        desktop, _ = _frame_urls(response.content.decode())
        assert client.get(desktop).content.decode() == "<p>Hello Tomás, bronze</p>"
        [entry] = _lookups()
        assert (entry.resource_type, entry.resource_id) == ("content_block", block_id)
        assert _personal(entry) == {"external_id": "customer-1002"}
    else:
        assert lookup_url not in page.content.decode()
        assert response.status_code == 403
        assert _lookups() == []
        assert not [e for e in braze.admin.log() if e["path"] == "/users/export/ids"]


def test_a_braze_user_without_the_attribute_gets_the_default(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle
) -> None:
    block_id = _block_id(braze)
    braze.admin.edit_content_block(block_id, content=GREETING)
    client = client_for(Role.REVIEWER)

    response = client.post(
        reverse("templates_app:preview_as_braze_user", args=["content_block", block_id]),
        {"external_id": "customer-1003"},
    )

    desktop, _ = _frame_urls(response.content.decode())
    assert client.get(desktop).content.decode() == "<p>Hello friend, </p>"


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.EDITOR, Role.AUDITOR, Role.ADMIN])
def test_the_review_page_shows_before_and_after_for_a_braze_user_to_editors_and_reviewers(
    client_for: Callable[[Role | None], Client], role: Role
) -> None:
    cr = services.content_propose(
        actor=user_with_role(Role.EDITOR),
        kind=kinds.CONTENT_BLOCKS,
        braze_id="cb-1",
        data={"name": "greeting", "content": "<p>Welcome back, {{${first_name}}}</p>"},
        base_snapshot={"name": "greeting", "content": GREETING, "state": "active"},
    )
    client = client_for(role)
    url = reverse("templates_app:change_preview_braze_user", args=[cr.pk])

    page = client.get(reverse("templates_app:change_preview", args=[cr.pk]))
    response = client.post(url, {"external_id": "customer-1001"})

    if role in LOOKUP_ROLES:
        assert url in page.content.decode()
        body = response.content.decode()
        assert "Content, as Braze user customer-1001" in body
        before, after = (client.get(u).content.decode() for u in _frame_urls(body)[-2:])
        assert (before, after) == ("<p>Hello Maya, gold</p>", "<p>Welcome back, Maya</p>")
        assert "+<p>Welcome back, Maya</p>" in body.replace("&lt;", "<").replace("&gt;", ">")
        [entry] = _lookups()
        assert (entry.resource_type, entry.resource_id) == ("content_block", cr.identifier)
    else:
        assert url not in page.content.decode()
        assert response.status_code == 403
        assert _lookups() == []
