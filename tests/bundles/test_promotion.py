"""The promotion screen: objects picked in staging, previewed against production (created,
changed, identical, the blocks they need), and opened as one bundle change request in
production by someone who may propose there (checked on the server)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from bundles.appliers import RESOURCE_TYPE
from console.audit import events
from console.audit.models import AuditEntry
from console.audit.sentences import audit_sentence
from console.changes.models import ChangeRequest, ChangeState
from console.roles import Role, user_workspace_roles_assign
from tests.factories import user_with_role
from tests.fixtures.promotion import two_workspaces
from tests.fixtures.sandbox import SandboxHandle

pytestmark = pytest.mark.django_db

URL = "/w/staging/content/promote/"
PREVIEW = {"HX-Request": "true", "HX-Target": "promotion-preview"}
BACK_IN_STOCK = "email_template:Back in Stock"


@pytest.fixture
def workspaces(braze: SandboxHandle, settings: Settings) -> SandboxHandle:
    two_workspaces(settings, braze)
    return braze


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def editor() -> Client:
    return _client(user_with_role(Role.EDITOR))


def _preview(client: Client, *picks: str, **extra: object) -> str:
    data = {"target": "production", "pick": list(picks), **extra}
    response = client.post(URL, data, headers=PREVIEW)
    assert response.status_code == 200, response.content.decode()
    return response.content.decode()


def _digest(page: str) -> str:
    found = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    assert found, "the preview offers no change request to open"
    return found.group(1)


def test_the_screen_lists_the_source_s_objects_as_labelled_checkboxes(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = editor.get(URL).content.decode()

    assert "Promote from Staging" in page
    assert '<option value="production">Production</option>' in page
    # Every pick is a checkbox with its own label.
    box = re.search(
        r'<input type="checkbox" name="pick" value="content_block:greeting" id="([^"]+)"', page
    )
    assert box is not None
    assert f'<label for="{box.group(1)}">greeting</label>' in page
    assert 'value="email_template:Back in Stock"' in page
    assert 'value="catalog:products"' in page


def test_the_filter_narrows_the_list_but_keeps_what_is_picked(
    workspaces: SandboxHandle, editor: Client
) -> None:
    response = editor.get(
        URL,
        {"q": "spot", "pick": "email_template:Welcome"},
        headers={"HX-Request": "true", "HX-Target": "promotion-objects"},
    )
    page = response.content.decode()

    assert page.lstrip().startswith('<fieldset id="promotion-objects">')
    assert 'value="content_block:product_spotlight"' in page
    assert 'value="content_block:greeting"' not in page
    assert re.search(r'value="email_template:Welcome" id="[^"]+" checked', page)


def test_the_preview_offers_the_block_a_template_needs_and_sorts_the_rest(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = _preview(
        editor,
        BACK_IN_STOCK,
        "email_template:Welcome",
        "content_block:legal_notice",
    )

    # Production lacks product_spotlight: offered, ticked, and applied first.
    assert re.search(r'name="dependency" value="product_spotlight" id="[^"]+" checked', page)
    order = re.search(r"<ol data-apply-order>(.*?)</ol>", page, re.S)
    assert order is not None
    assert re.findall(r"<li>(.*?)</li>", order.group(1)) == [
        "Update Content Block &quot;legal_notice&quot;",
        "Create Content Block &quot;product_spotlight&quot;",
        "Create Email template &quot;Back in Stock&quot;",
    ]
    assert 'data-created="content_block:product_spotlight"' in page
    assert 'data-created="email_template:Back in Stock"' in page
    # The changed block shows its two wordings side by side.
    changed = page.split('data-changed="content_block:legal_notice"')[1]
    assert "© 2025 Example Outfitters" in changed
    assert "© 2026 Example Outfitters" in changed
    assert "<li>Email template &quot;Welcome&quot;</li>" in page.split("data-identical")[1]
    assert not ChangeRequest.objects.exists()


def test_a_dependency_left_out_is_named_as_missing_in_the_target(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = _preview(editor, BACK_IN_STOCK, offered="product_spotlight")

    assert re.search(r'name="dependency" value="product_spotlight" id="[^"]+">', page)
    assert 'data-created="content_block:product_spotlight"' not in page
    assert (
        "Email template &quot;Back in Stock&quot; includes the Content Block "
        "&quot;product_spotlight&quot;, which the workspace does not hold"
    ) in page


def test_opening_the_promotion_makes_one_change_request_in_the_target_and_audits_it(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = _preview(editor, BACK_IN_STOCK)

    response = editor.post(
        URL,
        {
            "target": "production",
            "pick": [BACK_IN_STOCK],
            "offered": "product_spotlight",
            "dependency": "product_spotlight",
            "digest": _digest(page),
            "propose": "1",
        },
    )

    cr = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/w/production/content/bundles/{cr.pk}/"
    assert (cr.workspace, cr.resource_type, cr.state) == (
        "production",
        RESOURCE_TYPE,
        ChangeState.PENDING,
    )
    assert [(p["action"], p["kind"], p["name"]) for p in cr.payload["parts"]] == [
        ("create", "content_block", "product_spotlight"),
        ("create", "email_template", "Back in Stock"),
    ]
    promoted = AuditEntry.objects.get(action=events.BUNDLE_PROMOTED)
    assert promoted.change_request_id == cr.pk
    assert promoted.workspace == "production"
    assert audit_sentence(promoted).text.endswith(
        "promoted 2 objects from Staging to Production: Content Block product_spotlight, "
        f"Email template Back in Stock (change #{cr.pk})"
    )
    # Its page, in production, lists both parts.
    review = editor.get(response["Location"]).content.decode()
    assert 'data-part="content_block:product_spotlight"' in review
    assert 'data-part="email_template:Back in Stock"' in review


def test_a_preview_that_no_longer_holds_opens_nothing(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = _preview(editor, BACK_IN_STOCK)
    stale = _digest(page)
    # Someone creates the block in production meanwhile: the bundle is another one now.
    from tests.fixtures.canary import CANARIES

    with workspaces.client(CANARIES.production_api_key) as production:
        production.post(
            "/content_blocks/create", json={"name": "product_spotlight", "content": "Other"}
        ).raise_for_status()

    response = editor.post(
        URL,
        {"target": "production", "pick": [BACK_IN_STOCK], "digest": stale, "propose": "1"},
    )

    assert response.status_code == 409
    assert "changed since the preview" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_nothing_to_promote_offers_no_change_request(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = _preview(editor, "email_template:Welcome")

    assert "data-nothing" in page
    assert 'name="propose"' not in page


def test_a_post_without_picks_is_refused(workspaces: SandboxHandle, editor: Client) -> None:
    response = editor.post(URL, {"target": "production"}, headers=PREVIEW)
    assert response.status_code == 400
    assert "Pick at least one object to promote." in response.content.decode()


# --- who may promote, checked on the server ----------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER, Role.AUDITOR, Role.ADMIN, None])
def test_only_those_who_may_propose_open_the_screen(
    workspaces: SandboxHandle, role: Role | None
) -> None:
    client = _client(user_with_role(role))
    assert client.get(URL).status_code == 403
    response = client.post(URL, {"target": "production", "pick": [BACK_IN_STOCK], "propose": "1"})
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_an_editor_in_staging_only_cannot_promote_into_production(
    workspaces: SandboxHandle,
) -> None:
    person = user_with_role(None)
    user_workspace_roles_assign(user=person, workspace="staging", roles=[Role.EDITOR])
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.VIEWER])
    client = _client(person)

    page = client.get(URL).content.decode()
    assert "data-no-target" in page
    assert '<option value="production">' not in page
    # Naming production anyway is refused on the server, before anything is read.
    response = client.post(
        URL, {"target": "production", "pick": [BACK_IN_STOCK], "propose": "1"}, headers=PREVIEW
    )
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()


def test_an_editor_in_production_only_does_not_promote_from_staging(
    workspaces: SandboxHandle,
) -> None:
    person = user_with_role(None)
    user_workspace_roles_assign(user=person, workspace="staging", roles=[Role.VIEWER])
    user_workspace_roles_assign(user=person, workspace="production", roles=[Role.EDITOR])

    assert _client(person).get(URL).status_code == 403


def test_the_target_cannot_be_the_source(workspaces: SandboxHandle, editor: Client) -> None:
    response = editor.post(URL, {"target": "staging", "pick": [BACK_IN_STOCK]}, headers=PREVIEW)
    assert response.status_code == 400
    assert not ChangeRequest.objects.exists()


def test_the_promotion_s_page_opens_in_its_workspace_only(
    workspaces: SandboxHandle, editor: Client
) -> None:
    page = _preview(editor, BACK_IN_STOCK)
    editor.post(
        URL,
        {"target": "production", "pick": [BACK_IN_STOCK], "digest": _digest(page), "propose": "1"},
    )
    cr = ChangeRequest.objects.get()
    # An Auditor of staging only reads staging's bundles, not production's through staging.
    person = user_with_role(None)
    user_workspace_roles_assign(user=person, workspace="staging", roles=[Role.AUDITOR])
    auditor = _client(person)

    assert auditor.get(f"/w/staging/content/bundles/{cr.pk}/").status_code == 404
    assert auditor.get(f"/w/production/content/bundles/{cr.pk}/").status_code == 403
    assert editor.get(f"/w/production/content/bundles/{cr.pk}/").status_code == 200
