"""Preview as a person in the browser: the Editor sees a block greet two saved profiles,
and the Reviewer sees the same person before and after the change."""

import uuid
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.urls import reverse
from playwright.sync_api import Browser, expect
from pytest_django.fixtures import Settings

from console.braze import close_client
from console.changes.models import ChangeRequest
from console.roles import Role
from console.services import demo_users_create
from templates_app.services import content_sync, preview_profile_save
from tests.browser.helpers import open_link, signed_in
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle

GREETING = "<p>Hello {{${first_name} | default: 'friend'}}</p>"


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"browser-{uuid.uuid4().hex}",
    }
    close_client()
    cache.clear()
    yield braze_sandbox
    close_client()
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_an_editor_previews_a_greeting_as_two_profiles_and_the_reviewer_sees_before_and_after(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    demo_users_create()
    content_sync()
    author = user_with_role(Role.EDITOR)
    for name, attributes in (("Ana", {"first_name": "Ana"}), ("Nameless", {})):
        preview_profile_save(
            actor=author,
            profile=None,
            data={"name": name, "attributes": attributes, "language": "", "time_zone": ""},
        )
    base = live_server.url

    editor = signed_in(browser, base, "editor")
    editor.get_by_role("navigation", name="Main").get_by_role("link", name="Content blocks").click()
    editor.get_by_role("link", name="legal_notice").click()
    open_link(editor, "Edit")
    editor.get_by_label("Content (HTML)").fill(GREETING)
    # The live preview has caught up with the typing before a person is chosen.
    live = editor.frame_locator("#preview-content iframe").first.locator("p")
    expect(live).to_contain_text("Hello")
    chosen = editor.frame_locator("#preview-as-result-content iframe").first.locator("p")
    editor.get_by_label("Preview as").select_option(label="Ana")
    expect(chosen).to_have_text("Hello Ana")
    editor.get_by_label("Preview as").select_option(label="Nameless")
    expect(chosen).to_have_text("Hello friend")
    # An existing Braze user, read from Braze for this one preview.
    editor.get_by_label("or as the Braze user with external ID").fill("customer-1001")
    editor.get_by_role("button", name="Preview as this Braze user").click()
    expect(chosen).to_have_text("Hello Maya")
    editor.get_by_role("button", name="Send for review").click()
    editor.wait_for_load_state("networkidle")
    cr = ChangeRequest.objects.get()

    reviewer = signed_in(browser, base, "reviewer")
    reviewer.goto(base + reverse("templates_app:change_preview", args=[cr.pk]))
    reviewer.get_by_label("Preview before and after as").select_option(label="Ana")
    reviewer.get_by_role("button", name="Show what changes").click()
    expect(reviewer.get_by_role("heading", name="Content, as Ana")).to_be_visible()
    after = reviewer.frame_locator("iframe[title='Content, after']").last.locator("p")
    expect(after).to_have_text("Hello Ana")
    expect(reviewer.locator("[data-rendered-diff]")).to_contain_text("+<p>Hello Ana</p>")
    reviewer.get_by_label("or as the Braze user with external ID").fill("customer-1002")
    reviewer.get_by_role("button", name="Preview this Braze user before and after").click()
    expect(
        reviewer.get_by_role("heading", name="Content, as Braze user customer-1002")
    ).to_be_visible()
    after = reviewer.frame_locator("iframe[title='Content, after']").last.locator("p")
    expect(after).to_have_text("Hello Tomás")
