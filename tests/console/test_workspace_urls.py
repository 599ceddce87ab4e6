"""Every URL carries its workspace once there are several (console/workspace_urls.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.roles import Role
from console.workspace_urls import workspace_reverse
from console.workspaces import workspaces_from_env

TWO = {
    "BRAZE_WORKSPACES": "staging,production",
    "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
    "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
    "BRAZE_PRODUCTION_LABEL": "Production (EU)",
    "BRAZE_PRODUCTION_PRODUCTION": "1",
}


@pytest.fixture
def two_workspaces(settings: Settings) -> None:
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(TWO)


@pytest.fixture
def editor_client(client_for: Callable[[Role | None], Client]) -> Client:
    return client_for(Role.EDITOR)


# --- a single workspace: URLs as they always were ----------------------------------------------


def test_alone_a_workspace_keeps_its_urls_unprefixed(editor_client: Client) -> None:
    assert reverse("changes:list") == "/changes/"
    assert editor_client.get("/changes/").status_code == 200
    # The prefix is understood all the same, and links then keep it.
    prefixed = editor_client.get("/w/default/changes/")
    assert prefixed.status_code == 200
    assert 'href="/w/default/changes/"' in prefixed.content.decode()
    assert workspace_reverse("changes:detail", workspace="default", args=[3]) == "/changes/3/"


def test_alone_no_workspace_bar_is_shown(editor_client: Client) -> None:
    assert 'aria-label="Workspace"' not in editor_client.get("/changes/").content.decode()


# --- several workspaces ------------------------------------------------------------------------


@pytest.mark.usefixtures("two_workspaces")
def test_links_on_a_page_stay_in_its_workspace(editor_client: Client) -> None:
    html = editor_client.get("/w/production/changes/").content.decode()

    assert 'href="/w/production/changes/"' in html  # the navigation
    assert 'href="/changes/"' not in html
    # The prefix was for that request only: code running afterwards builds plain URLs.
    assert reverse("changes:list") == "/changes/"


@pytest.mark.usefixtures("two_workspaces")
def test_an_unprefixed_address_goes_to_the_default_then_to_the_last_workspace_used(
    editor_client: Client,
) -> None:
    first = editor_client.get("/changes/?status=open")
    assert (first.status_code, first["Location"]) == (302, "/w/staging/changes/?status=open")

    editor_client.get("/w/production/changes/")
    again = editor_client.get("/changes/")
    assert again["Location"] == "/w/production/changes/"


@pytest.mark.usefixtures("two_workspaces")
def test_a_write_to_an_address_naming_no_workspace_is_refused(editor_client: Client) -> None:
    response = editor_client.post("/changes/1/act", {"op": "withdraw"})

    assert response.status_code == 400


@pytest.mark.usefixtures("two_workspaces")
def test_an_unknown_workspace_is_not_found(editor_client: Client) -> None:
    assert editor_client.get("/w/nowhere/changes/").status_code == 404


@pytest.mark.usefixtures("two_workspaces")
def test_sign_in_health_and_static_pages_belong_to_no_workspace(client: Client) -> None:
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/healthz").status_code != 302
    assert reverse("login") == "/accounts/login/"


@pytest.mark.usefixtures("two_workspaces")
def test_the_bar_names_the_workspace_and_marks_production(editor_client: Client) -> None:
    staging = editor_client.get("/w/staging/changes/").content.decode()
    production = editor_client.get("/w/production/changes/").content.decode()

    assert "Workspace: <strong>Staging</strong>" in staging
    assert "workspace-production" not in staging
    assert "Workspace: <strong>Production (EU)</strong>" in production
    assert 'class="workspace-bar workspace-production"' in production
    assert "badge-production" in production


@pytest.mark.usefixtures("two_workspaces")
def test_the_switcher_keeps_your_place(editor_client: Client) -> None:
    html = editor_client.get("/w/staging/changes/policy/").content.decode()

    assert 'href="/w/production/changes/policy/?switched=staging"' in html
    assert 'href="/w/staging/changes/policy/" aria-current="true"' in html


@pytest.mark.usefixtures("two_workspaces")
def test_an_object_missing_in_the_other_workspace_falls_back_to_its_list(
    editor_client: Client,
) -> None:
    response = editor_client.get("/w/production/changes/987654/?switched=staging")

    assert (response.status_code, response["Location"]) == (302, "/w/production/changes/")
    page = editor_client.get(response["Location"]).content.decode()
    assert "That page does not exist in Production (EU)" in page
    # Without the switcher's mark, a missing object is an ordinary 404.
    assert editor_client.get("/w/production/changes/987654/").status_code == 404


@pytest.mark.usefixtures("two_workspaces")
def test_links_made_outside_a_request_name_their_workspace() -> None:
    assert (
        workspace_reverse("changes:detail", workspace="production", args=[7])
        == "/w/production/changes/7/"
    )
    assert reverse("changes:detail", args=[7]) == "/changes/7/"


def test_static_files_keep_one_address_whichever_workspace_first_serves_a_page(
    two_workspaces: None, editor_client: Client, settings: Settings
) -> None:
    from django.conf import settings as lazy_settings
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.utils.functional import empty

    # As in a fresh process: nothing has read STATIC_URL (Django keeps what it first read).
    lazy_settings.__dict__.pop("STATIC_URL", None)
    cast(Any, staticfiles_storage)._wrapped = empty  # a LazyObject, typed as the storage

    page = editor_client.get("/w/production/changes/").content.decode()

    assert 'href="/static/console/console.css' in page
    assert "/w/production/static/" not in page
