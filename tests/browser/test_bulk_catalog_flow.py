"""An Editor uploads a bulk change, checks the preview and submits it; a Reviewer approves;
the job runs to the end and its report downloads with every item's outcome."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.celery import app as celery_app
from console.services import demo_password, demo_users_create
from tests.browser.helpers import sign_in
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def braze(
    settings: Settings, braze_sandbox: SandboxHandle, tmp_path: Path
) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS, "workspace": f"browser-{uuid.uuid4().hex}",
    }  # fmt: skip
    close_client()
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # parse, apply and send run in the web process
    yield braze_sandbox
    celery_app.conf.task_always_eager = old
    close_client()


def _signed_in(browser: Browser, base_url: str, username: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, base_url, username, demo_password(username))
    return page


@pytest.mark.django_db(transaction=True)
def test_upload_preview_approve_progress_and_report(
    live_server, browser: Browser, braze: SandboxHandle, tmp_path: Path
) -> None:
    from catalogs.services import catalog_mirror_refresh

    demo_users_create()
    braze.admin.reset(products=20)
    catalog_mirror_refresh(client=get_client())
    lines = ["id,name,price"] + [f"bulk-{n:03d},Bulk item {n},{n}" for n in range(120)]
    lines.append("bad id!,Broken,1")
    upload = tmp_path / "items.csv"
    upload.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = live_server.url

    editor = _signed_in(browser, base, "editor")
    editor.goto(f"{base}/catalogs/products/")
    editor.get_by_role("link", name="Bulk change (CSV / JSON Lines)…").click()
    editor.get_by_label("Item file (CSV or JSON Lines)").set_input_files(str(upload))
    editor.get_by_role("button", name="Upload and check").click()
    expect(editor.get_by_role("heading", name="Preview ready")).to_be_visible()
    expect(editor.get_by_role("cell", name="invalid-ids", exact=False)).to_be_visible()
    with editor.expect_download() as errors:
        editor.get_by_role("link", name="Download the 1 error rows (CSV)").click()
    assert "bad id!,Broken,1" in Path(errors.value.path()).read_text()
    editor.get_by_role("button", name="Submit 120 changes for review").click()
    expect(editor.get_by_role("heading", name="Waiting for review")).to_be_visible()
    job_url = editor.url

    from console.changes.models import ChangeRequest

    cr = ChangeRequest.objects.get(resource_type="catalog_bulk")
    reviewer = _signed_in(browser, base, "reviewer")
    reviewer.goto(job_url)
    reviewer.get_by_role("link", name=f"#{cr.pk} (Pending review)").click()
    expect(reviewer.get_by_text("sample create line 2 (bulk-000)", exact=False)).to_be_visible()
    reviewer.get_by_role("button", name="Approve").click()

    editor.goto(job_url)
    expect(editor.get_by_role("heading", name="Finished")).to_be_visible(timeout=30_000)
    expect(editor.get_by_role("progressbar", name="Items sent")).to_have_attribute("value", "100")
    expect(editor.get_by_text("120 of 120 items done")).to_be_visible()
    with editor.expect_download() as report:
        editor.get_by_role("link", name="Download the report", exact=False).click()
    rows = Path(report.value.path()).read_text().splitlines()
    assert rows[0] == (
        "line,id,operation,sent_as,outcome,requests,re_sent,batch,error,read_back,read_back_detail"
    )
    assert sum(1 for r in rows if ",accepted," in r) == 120
    assert any(r.startswith("122,bad id!,error,,skipped") for r in rows)
    braze.admin.flush_async()
    item = get_client().catalog_item_get(catalog_name="products", item_id="bulk-007")
    assert item["name"] == "Bulk item 7"
