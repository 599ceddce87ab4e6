"""An Editor mirrors and searches a catalog, edits an item; a Reviewer approves; the item
page shows the new value."""

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.celery import app as celery_app
from console.services import demo_users_create
from tests.browser.helpers import open_link, signed_in
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    braze_sandbox.admin.reset(products=120)  # three pages: a full pass is three requests
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"browser-{uuid.uuid4().hex}",
    }
    close_client()
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the sync and the apply run at commit
    yield braze_sandbox
    celery_app.conf.task_always_eager = old
    close_client()


@pytest.mark.django_db(transaction=True)
def test_an_editor_searches_edits_an_item_and_after_approval_the_item_page_shows_it(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    from catalogs.services import catalog_mirror_refresh

    demo_users_create()
    catalog_mirror_refresh(client=get_client())
    base = live_server.url

    editor = signed_in(browser, base, "editor")
    editor.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogs").click()
    editor.get_by_role("link", name="products").click()
    editor.get_by_role("button", name="Refresh from Braze").click()
    expect(editor.locator("#sync").get_by_role("status")).to_contain_text("Succeeded")
    editor.get_by_role("link", name="Browse items").click()

    # Live search: typing narrows the table without a submit.
    editor.get_by_label("Search text fields").press_sequentially("sku-000042", delay=30)
    expect(editor.locator("#results tbody tr")).to_have_count(1)
    editor.get_by_role("link", name="sku-000042").click()
    open_link(editor, "Edit")
    editor.get_by_label("price (number)", exact=True).fill("not a price")
    editor.get_by_role("button", name="Propose edit").click()
    expect(editor.get_by_role("alert").filter(has_text="unable-to-coerce-value")).to_be_visible()
    editor.get_by_label("price (number)", exact=True).fill("77.25")
    editor.get_by_role("button", name="Propose edit").click()
    expect(editor.locator("[data-state]")).to_have_text("Pending review")
    change_url = editor.url

    reviewer = signed_in(browser, base, "reviewer")
    reviewer.goto(change_url)
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text("Applied")

    reviewer.goto(f"{base}/catalogs/products/items/sku-000042/")
    expect(reviewer.locator('[data-field="price"]')).to_have_text("77.25")
    item = get_client().catalog_item_get(catalog_name="products", item_id="sku-000042")
    assert item["price"] == 77.25
