"""Two workspaces: the bar names the one you are in (production marked), and the switcher
opens the same page in the other, or its list when the object is not there."""

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect
from pytest_django.fixtures import Settings

from console.changes.models import ChangeRequest
from console.services import demo_password, demo_users_create
from console.workspaces import workspaces_from_env
from tests.browser.helpers import open_link, sign_in


def _change_request(workspace: str, title: str, author: User) -> ChangeRequest:
    return ChangeRequest.objects.create(
        workspace=workspace,
        resource_type="content_block",
        identifier="footer",
        action="update",
        title=title,
        payload={},
        payload_hash="x",
        state="pending",
        author=author,
        last_editor=author,
    )


@pytest.mark.django_db(transaction=True)
def test_the_switcher_keeps_your_place_and_production_is_marked(
    live_server, browser: Browser, settings: Settings
) -> None:
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging,production",
            "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
            "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
            "BRAZE_PRODUCTION_PRODUCTION": "1",
        }
    )
    demo_users_create()
    editor = User.objects.get(username="editor")
    _change_request("staging", "Staging footer", editor)
    in_production = _change_request("production", "Production footer", editor)
    base = live_server.url
    page = browser.new_page()
    sign_in(page, base, "editor", demo_password("editor"))

    # Signed in, you land in the default workspace, and the bar says so.
    assert page.url.startswith(f"{base}/w/staging/")
    bar = page.get_by_role("region", name="Workspace")
    expect(bar).to_contain_text("Workspace: Staging")

    page.goto(f"{base}/w/staging/changes/")
    expect(page.get_by_role("link", name="Staging footer")).to_be_visible()
    expect(page.get_by_role("link", name="Production footer")).to_have_count(0)

    # The same list in production: production's requests, under a red, labelled bar.
    open_link(page, "Production (production)")
    assert page.url.startswith(f"{base}/w/production/changes/")
    expect(bar).to_contain_text("Workspace: Production")
    expect(bar).to_have_class("workspace-bar workspace-production")
    expect(page.get_by_role("link", name="Production footer")).to_be_visible()
    expect(page.get_by_role("link", name="Staging footer")).to_have_count(0)

    # A request that exists in production only: switching to staging shows staging's list.
    page.goto(f"{base}/w/production/changes/{in_production.pk}/")
    open_link(page, "Staging")
    assert page.url == f"{base}/w/staging/changes/"
    expect(page.get_by_role("status")).to_contain_text("That page does not exist in Staging")
    # Its links stay in staging.
    href = page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals")
    expect(href).to_have_attribute("href", "/w/staging/changes/")
