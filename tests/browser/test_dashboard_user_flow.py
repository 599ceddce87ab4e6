"""An Admin proposes a Braze dashboard user, a second Admin approves, the sandbox holds the
account, and an Auditor exports the access review that lists it."""

import csv
import io
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.fixtures import Settings

from console.audit.models import AuditEntry
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
    settings.BRAZE_SCIM_TOKEN = braze_sandbox.scim_token
    settings.BRAZE_SCIM_ORIGIN = braze_sandbox.scim_origin
    settings.BRAZE_SCIM_PERMISSIONS = "granular"
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
def test_a_dashboard_user_goes_from_admin_to_a_second_admin_to_braze_to_the_access_review(
    live_server, browser: Browser, braze: SandboxHandle
) -> None:
    demo_users_create()
    base = live_server.url

    admin = _signed_in(browser, base, "admin")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    admin.get_by_role("link", name="Braze dashboard users").click()
    admin.get_by_role("link", name="Propose a new dashboard user").click()
    admin.get_by_label("Email").fill("nora.new@example.com")
    admin.get_by_label("Given name").fill("Nora")
    admin.get_by_label("Family name").fill("New")
    admin.get_by_label("Department").select_option("marketing")
    admin.get_by_label("Workspace permissions").fill("demo: view_campaigns, make_coffee")
    admin.get_by_role("button", name="Propose").click()
    # Braze's rule, before anything is sent; what was typed stays.
    expect(admin.get_by_role("alert")).to_contain_text("make_coffee is not a Braze workspace")
    expect(admin.get_by_label("Given name")).to_have_value("Nora")
    admin.get_by_label("Workspace permissions").fill("demo: edit_campaigns, view_campaigns")
    admin.get_by_role("button", name="Propose").click()
    admin.wait_for_load_state("networkidle")
    cr = ChangeRequest.objects.get()
    assert cr.state == ChangeState.PENDING
    assert cr.author.username == "admin"
    assert get_client().scim_user_search(email="nora.new@example.com") is None

    # Staff accounts are not for Reviewers to see; another Admin approves them.
    reviewer = _signed_in(browser, base, "reviewer")
    reviewer.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    expect(reviewer.get_by_role("link", name=cr.title)).to_have_count(0)
    second_admin = _signed_in(browser, base, "admin2")
    second_admin.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Approvals"
    ).click()
    second_admin.get_by_role("link", name=cr.title).click()
    second_admin.get_by_role("button", name="Approve").click()
    expect(second_admin.locator("[data-state]")).to_have_text("Applied")

    account = get_client().scim_user_search(email="nora.new@example.com")
    assert account is not None
    assert (account.given_name, account.family_name, account.department) == (
        "Nora",
        "New",
        "marketing",
    )
    assert account.permissions["appGroup"][0]["appGroupPermissions"] == [
        "edit_campaigns",
        "view_campaigns",
    ]

    auditor = _signed_in(browser, base, "auditor")
    auditor.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    auditor.get_by_role("link", name="Access review").click()
    expect(auditor.get_by_role("cell", name="reviewer2", exact=True)).to_be_visible()
    # The proposal made the new account one of the emails the review looks up.
    expect(auditor.get_by_label("Dashboard user emails to look up")).to_contain_text(
        "nora.new@example.com"
    )
    # The look-up runs on a worker (eager here); the page shows its rows, then exports them.
    auditor.get_by_role("button", name="Look up in Braze").click()
    expect(auditor.locator("[data-state]")).to_contain_text("Looked up all")
    with auditor.expect_download() as download_info:
        auditor.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(download_info.value.path().read_text())))
    nora = next(r for r in rows if r["email"] == "nora.new@example.com")
    assert nora["account_type"] == "braze_dashboard"
    assert nora["roles_or_permissions"] == "demo: edit_campaigns, view_campaigns"
    admin_row = next(r for r in rows if r["username"] == "admin")
    assert admin_row["roles_or_permissions"] == "Admin"
    assert admin_row["last_sign_in"] != "never"
    export = AuditEntry.objects.get(action="access_review.exported")
    assert export.actor_name == "auditor"
