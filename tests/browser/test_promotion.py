"""Promotion in the browser, with two sandbox workspaces: an Editor promotes a template and
the Content Block it includes from staging to production, a Reviewer of production approves,
both exist in production's sandbox, and the audit shows one promotion with both parts."""

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect
from pytest_django.fixtures import Settings

from bundles.appliers import RESOURCE_TYPE
from console.changes.models import ChangeRequest, ChangeState
from console.roles import Role, user_workspace_roles_assign
from console.services import demo_users_create
from console.workspace_urls import workspace_reverse
from tests.browser.helpers import signed_in
from tests.browser.test_accessibility import axe_violations
from tests.fixtures.promotion import production_names, two_workspaces
from tests.fixtures.sandbox import SandboxHandle


@pytest.mark.django_db(transaction=True)
def test_an_editor_promotes_a_template_and_its_block_and_a_production_reviewer_approves(
    live_server, browser: Browser, braze: SandboxHandle, settings: Settings
) -> None:
    two_workspaces(settings, braze)
    demo_users_create()
    # The Reviewer's rights are production's: in staging they only read.
    reviewer_user = User.objects.get(username="reviewer")
    user_workspace_roles_assign(user=reviewer_user, workspace="production", roles=[Role.REVIEWER])
    user_workspace_roles_assign(user=reviewer_user, workspace="staging", roles=[Role.VIEWER])
    assert "product_spotlight" not in production_names(braze, "content_blocks")
    base = live_server.url

    editor = signed_in(browser, base, "editor")
    assert editor.url.startswith(f"{base}/w/staging/")
    main = editor.get_by_role("navigation", name="Main")
    with editor.expect_navigation(wait_until="load"):
        main.get_by_role("link", name="Promote").click()
    expect(editor.get_by_role("heading", level=1)).to_have_text("Promote from Staging")
    editor.get_by_label("Target workspace").select_option(label="Production")
    # The filter reads staging's lists from Braze: wait for its answer, however loaded.
    with editor.expect_response(lambda r: "/content/promote/?" in r.url and "q=Back" in r.url):
        editor.get_by_label("Name contains").fill("Back in")
    objects = editor.locator("#promotion-objects")
    expect(objects.get_by_label("greeting")).to_have_count(0)
    objects.get_by_label("Back in Stock").check()
    editor.get_by_role("button", name="Preview", exact=True).click()

    preview = editor.locator("#promotion-preview")
    dependency = preview.get_by_label("Content Block “product_spotlight”")
    expect(dependency).to_be_checked()
    expect(preview.locator("[data-apply-order] li")).to_have_text(
        ['Create Content Block "product_spotlight"', 'Create Email template "Back in Stock"']
    )
    # The screen with its preview passes axe like every other (test_accessibility.py).
    assert axe_violations(editor, "promotion preview") == []
    with editor.expect_navigation(wait_until="load"):
        preview.get_by_role("button", name="Open the change request in Production").click()

    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert (cr.workspace, cr.state) == ("production", ChangeState.PENDING)
    assert editor.url == f"{base}/w/production/content/bundles/{cr.pk}/"
    expect(editor.locator("[data-part]")).to_have_count(2)
    expect(editor.get_by_role("status").first).to_contain_text(f"Change request #{cr.pk}")

    reviewer = signed_in(browser, base, "reviewer")
    reviewer.goto(
        base + workspace_reverse("changes:detail", workspace="production", kwargs={"pk": cr.pk})
    )
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("[data-state]")).to_have_text("Applied")
    expect(
        reviewer.get_by_text('1. Create Content Block "product_spotlight": applied.')
    ).to_be_visible()
    expect(
        reviewer.get_by_text('2. Create Email template "Back in Stock": applied.')
    ).to_be_visible()

    assert "product_spotlight" in production_names(braze, "content_blocks")
    assert "Back in Stock" in production_names(braze, "templates")

    # The audit: one promotion naming both parts, and each part's own outcome.
    auditor = signed_in(browser, base, "auditor")
    auditor.goto(f"{base}/w/production/audit/")
    promoted = auditor.get_by_text("promoted 2 objects from Staging to Production")
    expect(promoted).to_have_count(1)
    expect(promoted).to_contain_text(
        "Content Block product_spotlight, Email template Back in Stock"
    )
    expect(auditor.get_by_text(f"as part of change #{cr.pk}")).to_have_count(2)
