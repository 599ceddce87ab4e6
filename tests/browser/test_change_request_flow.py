"""An Editor proposes, a Reviewer approves, the change reaches the sandbox, and an
Auditor finds the trail and exports it."""

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.celery import app as celery_app
from console.changes.models import ChangeRequest, ChangeState
from console.services import demo_password, demo_users_create
from tests.browser.helpers import sign_in
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"browser-{uuid.uuid4().hex}",
    }
    close_client()
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield braze_sandbox
    celery_app.conf.task_always_eager = old
    close_client()


def _signed_in(browser: Browser, base_url: str, username: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, base_url, username, demo_password(username))
    return page


@pytest.mark.django_db(transaction=True)
def test_a_change_goes_from_editor_to_reviewer_to_braze_to_the_auditor(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    from catalogs.models import Catalog
    from catalogs.services import catalog_item_mirror_write, catalog_mirror_refresh

    demo_users_create()
    catalog_mirror_refresh(client=get_client())
    tiers = Catalog.objects.get(name="loyalty_tiers")
    silver = get_client().catalog_item_get(catalog_name="loyalty_tiers", item_id="silver")
    catalog_item_mirror_write(
        catalog=tiers,
        item_id="silver",
        action="create",
        values={k: v for k, v in silver.items() if k != "id"},
    )
    base = live_server.url

    editor = _signed_in(browser, base, "editor")
    editor.goto(f"{base}/catalogs/loyalty_tiers/items/silver/edit/")
    editor.get_by_label("min_points (number)").fill("1234")
    editor.get_by_role("button", name="Propose edit").click()
    editor.wait_for_load_state("networkidle")
    cr = ChangeRequest.objects.get()
    assert cr.state == ChangeState.PENDING
    assert cr.author.username == "editor"

    reviewer = _signed_in(browser, base, "reviewer")
    expect(reviewer.get_by_label("1 awaiting your review")).to_be_visible()
    reviewer.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    reviewer.get_by_role("link", name=cr.title).click()
    expect(reviewer.get_by_role("rowheader", name="min_points")).to_be_visible()
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text("Applied")

    item = get_client().catalog_item_get(catalog_name="loyalty_tiers", item_id="silver")
    assert item["min_points"] == 1234

    auditor = _signed_in(browser, base, "auditor")
    auditor.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    auditor.get_by_label("Change request").fill(str(cr.pk))
    auditor.get_by_role("button", name="Filter").click()
    expect(auditor.get_by_role("cell", name="braze.write")).to_be_visible()
    expect(auditor.get_by_role("cell", name="change_request.applied")).to_be_visible()
    with auditor.expect_download() as download_info:
        auditor.get_by_role("button", name="Export these entries").click()
    exported = download_info.value.path().read_text()
    assert "change_request.proposed" in exported
    assert "braze.write" in exported
    assert "audit.exported" not in exported  # the export's own entry comes after it
