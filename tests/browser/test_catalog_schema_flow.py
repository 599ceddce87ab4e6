"""The issue's walk-through: an Editor adds a field and builds a selection whose preview shows
the right items; a Reviewer approves both and the sandbox holds them; the field's deletion is
refused while the selection uses it; once the selection is gone, the field's deletion page
shows the templates that still read it."""

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.celery import app as celery_app
from console.changes.models import ChangeRequest, ChangeState
from console.services import demo_users_create
from tests.browser.helpers import open_link, signed_in
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"browser-{uuid.uuid4().hex}",
    }
    settings.CATALOG_SCHEMA_APPLY_WAIT_SECONDS = 15.0
    braze_sandbox.admin.set_async_delay(0.2)
    close_client()
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield braze_sandbox
    celery_app.conf.task_always_eager = old
    close_client()


def _approve(reviewer: Page, base: str, cr: ChangeRequest, state: str = "Applied") -> None:
    reviewer.goto(f"{base}{cr.get_absolute_url()}")
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text(state, timeout=20_000)


@pytest.mark.django_db(transaction=True)
def test_fields_and_selections_from_editor_to_reviewer_to_braze(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    from catalogs.models import Catalog
    from catalogs.services import catalog_mirror_refresh, catalog_sync_request, catalog_sync_step
    from console.changes.services import change_request_approve
    from console.roles import Role
    from templates_app.models import ContentVersion
    from tests.factories import user_with_role

    demo_users_create()
    catalog_mirror_refresh(client=get_client())
    stores = Catalog.objects.get(name="stores")
    catalog_sync_step(
        sync_id=catalog_sync_request(catalog=stores, actor=None).pk, client=get_client()
    )
    ContentVersion.objects.create(
        resource_type="email_template",
        braze_id="tpl-sundays",
        version=1,
        name="Sunday opening",
        snapshot={"body": "{% catalog_items stores store-london %}{{ items[0].open_sundays }}"},
        digest="sundays",
        source="synced",
    )
    base = live_server.url
    editor = signed_in(browser, base, "editor")
    reviewer = signed_in(browser, base, "reviewer")

    # An Editor adds a field; a Reviewer approves; Braze (the sandbox) holds it.
    editor.goto(f"{base}/catalogs/stores/")
    open_link(editor, "Add fields…")
    editor.get_by_label("Field 1: name").fill("manager")
    editor.get_by_label("Field 1: type").select_option("string")
    editor.get_by_role("button", name="Propose adding the field").click()
    editor.wait_for_load_state("networkidle")
    field_cr = ChangeRequest.objects.get(resource_type="catalog_field")
    _approve(reviewer, base, field_cr)
    stores_in_braze = next(c for c in get_client().catalog_list() if c.name == "stores")
    assert "manager" in {f.name for f in stores_in_braze.fields}

    # A selection whose live preview shows the right items.
    editor.goto(f"{base}/catalogs/stores/selections/~new/")
    editor.get_by_label("Selection name").fill("sundays")
    editor.get_by_label("Filter 1: field").select_option("open_sundays")
    editor.get_by_label("Filter 1: operator").select_option("is")
    editor.get_by_label("Filter 1: value").fill("true")
    editor.get_by_label("Sort by").select_option("city")
    editor.get_by_label("Order").select_option("asc")
    preview = editor.locator("#preview")
    expect(preview).to_contain_text("3 items")
    rows = preview.locator("tbody tr td:first-child")
    expect(rows).to_have_text(["store-berlin", "store-lisbon", "store-london"])
    editor.get_by_role("button", name="Propose the selection").click()
    editor.wait_for_load_state("networkidle")
    selection_cr = ChangeRequest.objects.get(resource_type="catalog_selection")
    _approve(reviewer, base, selection_cr)
    braze.admin.flush_async()
    [held] = braze.admin.catalog_selections("stores")
    assert [i["id"] for i in held["items"]] == ["store-berlin", "store-lisbon", "store-london"]

    # The field the selection uses cannot be deleted: Braze's words, nothing proposed.
    editor.goto(f"{base}/catalogs/stores/fields/open_sundays/delete/")
    expect(editor.get_by_text("Selections using it: sundays")).to_be_visible()
    editor.get_by_label("Type its name to confirm").fill("open_sundays")
    editor.get_by_role("button", name="Propose deletion").click()
    expect(editor.get_by_role("alert")).to_contain_text(
        "The catalog field is currently in use by a selection: sundays "
        "(field-referenced-by-selection)."
    )
    assert not ChangeRequest.objects.filter(resource_type="catalog_field", action="delete").exists()

    # Delete the selection (two approvals), then the field's page lists the template only.
    editor.goto(f"{base}/catalogs/stores/selections/sundays/delete/")
    editor.get_by_label("Type its name to confirm").fill("sundays")
    editor.get_by_role("button", name="Propose deletion").click()
    editor.wait_for_load_state("networkidle")
    deletion = ChangeRequest.objects.get(resource_type="catalog_selection", action="delete")
    change_request_approve(actor=user_with_role(Role.REVIEWER), change_request=deletion)
    _approve(reviewer, base, deletion)
    deletion.refresh_from_db()
    assert deletion.state == ChangeState.APPLIED
    braze.admin.flush_async()
    assert braze.admin.catalog_selections("stores") == []

    editor.goto(f"{base}/catalogs/stores/fields/open_sundays/delete/")
    expect(
        editor.get_by_text("Email template Sunday opening reads it in its Liquid")
    ).to_be_visible()
    expect(editor.get_by_text("Selections using it")).to_have_count(0)
