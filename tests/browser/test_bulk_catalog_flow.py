"""An Editor uploads a bulk change, checks the preview and submits it; a Reviewer approves;
a real Celery worker sends it while the page's progress bar moves; the report downloads
with every item's outcome."""

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.services import demo_password, demo_users_create
from tests.browser.helpers import sign_in
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.workers import StartWorker, worker_environment

ITEMS = 1500  # 30 batches
LATENCY_MS = 300  # per batch request: about 9 s of sending, several progress polls


@pytest.fixture
def braze(
    settings: Settings, braze_sandbox: SandboxHandle, tmp_path: Path
) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"browser-{uuid.uuid4().hex}",
    }
    close_client()
    yield braze_sandbox
    close_client()


@pytest.fixture
def worker(
    braze: SandboxHandle, settings: Settings, start_celery_worker: StartWorker
) -> subprocess.Popen[bytes]:
    """One worker parses, applies and sends; the web process only enqueues, as in production."""
    return start_celery_worker(worker_environment(braze=braze, settings=settings), "browser")


def _signed_in(browser: Browser, base_url: str, username: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, base_url, username, demo_password(username))
    return page


@pytest.mark.django_db(transaction=True)
def test_upload_preview_approve_progress_and_report(
    live_server: Any,
    browser: Browser,
    braze: SandboxHandle,
    worker: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    from catalogs.services import catalog_mirror_refresh

    demo_users_create()
    braze.admin.reset(products=20)
    catalog_mirror_refresh(client=get_client())
    braze.admin.set_injection(latency_ms=LATENCY_MS, groups=["catalog_items_async"])
    lines = ["id,name,price"] + [f"bulk-{n:04d},Bulk item {n},{n}" for n in range(ITEMS)]
    lines.append("bad id!,Broken,1")
    upload = tmp_path / "items.csv"
    upload.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = live_server.url

    editor = _signed_in(browser, base, "editor")
    editor.goto(f"{base}/catalogs/products/")
    editor.get_by_role("link", name="Bulk change (CSV / JSON Lines)…").click()
    editor.get_by_label("Item file (CSV or JSON Lines)").set_input_files(str(upload))
    editor.get_by_role("button", name="Upload and check").click()
    # The worker parses the file while the page polls.
    expect(editor.get_by_role("heading", name="Preview ready")).to_be_visible(timeout=30_000)
    expect(editor.get_by_role("cell", name="invalid-ids", exact=False)).to_be_visible()
    with editor.expect_download() as errors:
        editor.get_by_role("link", name="Download the 1 error rows (CSV)").click()
    assert "bad id!,Broken,1" in Path(errors.value.path()).read_text()
    editor.get_by_role("button", name=f"Submit {ITEMS:,} changes for review").click()
    expect(editor.get_by_role("heading", name="Waiting for review")).to_be_visible()
    job_url = editor.url

    from console.changes.models import ChangeRequest

    cr = ChangeRequest.objects.get(resource_type="catalog_bulk")
    reviewer = _signed_in(browser, base, "reviewer")
    reviewer.goto(job_url)
    reviewer.get_by_role("link", name=f"#{cr.pk} (Pending review)").click()
    expect(reviewer.get_by_text("sample create line 2 (bulk-0000)", exact=False)).to_be_visible()
    reviewer.get_by_role("button", name="Approve").click()

    # The editor watches the bar move (htmx swaps the status every 2 s) to the end.
    editor.goto(job_url)
    bar = editor.get_by_role("progressbar", name="Items sent")
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    while not editor.get_by_role("heading", name="Finished").is_visible():
        assert time.monotonic() < deadline, f"the job did not finish; the bar showed {seen}"
        if bar.count():
            seen.add(int(bar.get_attribute("value") or 0))
        editor.wait_for_timeout(250)
    assert any(0 < value < 100 for value in seen), f"the bar never moved: {seen}"
    expect(bar).to_have_attribute("value", "100")
    expect(editor.get_by_text(f"{ITEMS:,} of {ITEMS:,} items done")).to_be_visible()
    with editor.expect_download() as report:
        editor.get_by_role("link", name="Download the report", exact=False).click()
    rows = Path(report.value.path()).read_text().splitlines()
    assert rows[0] == (
        "line,id,operation,sent_as,outcome,requests,re_sent,batch,error,read_back,read_back_detail"
    )
    assert sum(1 for r in rows if ",accepted," in r) == ITEMS
    assert any(r.startswith(f"{ITEMS + 2},bad id!,error,,skipped") for r in rows)
    braze.admin.flush_async()
    item = get_client().catalog_item_get(catalog_name="products", item_id="bulk-0007")
    assert item["name"] == "Bulk item 7"
