"""The apply path against the Braze sandbox (a real HTTP server), with a canary API key."""

import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.braze import BrazeNotFound, close_client, get_client
from console.changes.appliers import merge_state
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import change_request_approve, change_request_propose
from console.changes.tasks import change_request_apply_task
from tests.console.changes.conftest import registered
from tests.fixtures.canary import CANARIES
from tests.fixtures.sandbox import SandboxHandle

TYPE = "sandbox_catalog_item"
ITEM = "loyalty_tiers/silver"


class SandboxItemApplier:
    """Catalog items through the console's Braze client (synchronous item endpoints)."""

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        catalog, item_id = identifier.split("/", 1)
        try:
            item = get_client().catalog_item_get(catalog_name=catalog, item_id=item_id)
        except BrazeNotFound:
            return None
        return {k: v for k, v in item.items() if k != "id"}

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        catalog, item_id = identifier.split("/", 1)
        get_client().catalog_item_edit(catalog_name=catalog, item_id=item_id, values=payload)
        return {"message": "success"}

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self.read_current(identifier) or {}
        return all(current.get(k) == v for k, v in payload.items())

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


@pytest.fixture
def canary() -> str:
    # The suite's own canary, so the suite-wide guard (tests/fixtures/canary.py) watches this
    # flow too, on top of the explicit checks below.
    return CANARIES.api_key


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle, canary: str) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = canary
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"t-{uuid.uuid4().hex}",
    }
    settings.BRAZE_RETRY = {**settings.BRAZE_RETRY, "attempts": 1}
    close_client()
    with registered(TYPE, SandboxItemApplier(), label="Catalog item"):
        yield braze_sandbox
    close_client()


def _propose(editor: User) -> ChangeRequest:
    return change_request_propose(
        actor=editor,
        resource_type=TYPE,
        identifier=ITEM,
        action="update",
        payload={"min_points": 1500},
        base_snapshot=SandboxItemApplier().read_current(ITEM),
    )


def _patches(braze: SandboxHandle) -> list[dict[str, Any]]:
    return [
        e
        for e in braze.admin.log()
        if e.get("method") == "PATCH" and e.get("path", "").endswith("/items/silver")
    ]


def test_it_goes_to_conflict_when_the_sandbox_changed_after_the_proposal(
    db: None, braze: SandboxHandle, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(editor)
    braze.admin.edit_catalog_item("loyalty_tiers", "silver", {"label": "Silver (edited)"})
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.CONFLICT
    assert _patches(braze) == []
    page = Client()
    page.force_login(reviewer)
    html = page.get(reverse("changes:detail", args=[cr.pk])).content.decode()
    assert "Silver (edited)" in html  # the three-way difference
    assert "In Braze now" in html


def test_a_failed_apply_retried_reaches_the_sandbox_exactly_once(
    db: None, braze: SandboxHandle, editor: User, reviewer: User, run_on_commit: Any
) -> None:
    cr = _propose(editor)
    braze.admin.set_injection(error_rate=1.0, error_status=500)
    with run_on_commit():
        change_request_approve(actor=reviewer, change_request=cr)
    cr.refresh_from_db()
    assert cr.state == ChangeState.FAILED
    assert cr.error_message
    braze.admin.set_injection(error_rate=0.0)
    client = Client()
    client.force_login(editor)
    with run_on_commit():
        client.post(reverse("changes:act", args=[cr.pk]), {"op": "retry"})
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    accepted = [e for e in _patches(braze) if e.get("status", 500) < 300]
    assert len(accepted) == 1
    current = SandboxItemApplier().read_current(ITEM)
    assert current is not None
    assert current["min_points"] == 1500


def _streamed(response: HttpResponseBase) -> Iterator[bytes]:
    """A streamed response's chunks: the test client answers with a StreamingHttpResponse."""
    return cast(Iterator[bytes], cast(StreamingHttpResponse, response).streaming_content)


def test_the_canary_key_never_leaks(
    db: None,
    braze: SandboxHandle,
    canary: str,
    editor: User,
    reviewer: User,
    run_on_commit: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64

    from console.roles import Role
    from tests.factories import user_with_role

    sent: list[str] = []
    results: list[object] = []
    original = change_request_apply_task.delay

    def recording_delay(*args: Any, **kwargs: Any) -> Any:
        sent.append(json.dumps([args, kwargs]))  # what the broker would carry
        result = original(*args, **kwargs)
        results.append(result.result)
        return result

    monkeypatch.setattr(change_request_apply_task, "delay", recording_delay)
    caplog.set_level("DEBUG")
    pages: list[str] = []
    reviewer_client = Client()
    reviewer_client.force_login(reviewer)
    # One failure (Braze's error text flows into the request) and one success.
    failing = _propose(editor)
    braze.admin.set_injection(error_rate=1.0, error_status=500)
    with run_on_commit():
        reviewer_client.post(reverse("changes:act", args=[failing.pk]), {"op": "approve"})
    braze.admin.set_injection(error_rate=0.0)
    with run_on_commit():
        reviewer_client.post(reverse("changes:act", args=[failing.pk]), {"op": "retry"})
    pages.append(reviewer_client.get(reverse("changes:detail", args=[failing.pk])).content.decode())
    pages.append(reviewer_client.get(reverse("changes:list") + "?view=all").content.decode())
    auditor = Client()
    auditor.force_login(user_with_role(Role.AUDITOR))
    pages.append(auditor.get(reverse("audit:list")).content.decode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq FROM audit_entry ORDER BY seq")
        for (seq,) in cursor.fetchall():
            pages.append(auditor.get(reverse("audit:detail", args=[seq])).content.decode())
        cursor.execute("SELECT string_agg(t::text, ' ') FROM audit_entry t")
        audit_dump = cursor.fetchone()[0]
        cursor.execute("SELECT string_agg(t::text, ' ') FROM console_changerequest t")
        cr_dump = cursor.fetchone()[0]
    exports = [
        b"".join(_streamed(auditor.post(reverse("audit:export"), {"format": f}))).decode()
        for f in ("csv", "jsonl")
    ]
    out, err = capfd.readouterr()
    failing.refresh_from_db()
    assert failing.state == ChangeState.APPLIED
    assert sent
    assert all(r is None for r in results)  # tasks store no results
    haystacks = {
        "logs": caplog.text + out + err,
        "pages": "\n".join(pages),
        "audit": audit_dump,
        "change requests": cr_dump,
        "exports": "\n".join(exports),
        "celery messages": "\n".join(sent),
    }
    needles = [canary, base64.b64encode(canary.encode()).decode()]
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"the canary key appears in {where}"
