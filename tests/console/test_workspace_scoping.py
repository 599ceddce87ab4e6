"""Braze-backed rows belong to a workspace, and lists show the request's workspace only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from catalogs.models import Catalog
from catalogs.selectors import catalog_get, catalog_list
from console.changes.models import ChangeRequest
from console.roles import Role
from templates_app.models import ContentVersion
from templates_app.selectors import version_latest
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db


def test_rows_made_without_a_workspace_belong_to_the_default_one() -> None:
    assert Catalog.objects.create(name="products").workspace == "default"


def test_a_catalog_name_is_unique_per_workspace_only() -> None:
    Catalog.objects.create(workspace="staging", name="products")
    Catalog.objects.create(workspace="production", name="products")

    with pytest.raises(IntegrityError), transaction.atomic():
        Catalog.objects.create(workspace="production", name="products")


def test_catalog_selectors_read_one_workspace() -> None:
    staging = Catalog.objects.create(workspace="staging", name="products")
    production = Catalog.objects.create(workspace="production", name="products")
    Catalog.objects.create(workspace="production", name="stores")

    assert [c.name for c in catalog_list(workspace="production")] == ["products", "stores"]
    assert catalog_list(workspace="staging") == [staging]
    assert catalog_get(name="products", workspace="production") == production


def test_content_history_is_kept_per_workspace() -> None:
    for workspace, version in (("default", 1), ("default", 2), ("production", 1)):
        ContentVersion.objects.create(
            workspace=workspace,
            resource_type="content_block",
            braze_id="same-id",
            version=version,
            name="footer",
            snapshot={},
            digest=f"{workspace}{version}",
            source="synced",
        )

    default = version_latest(resource_type="content_block", braze_id="same-id")
    assert default is not None
    assert default.version == 2
    production = version_latest(
        resource_type="content_block", braze_id="same-id", workspace="production"
    )
    assert production is not None
    assert production.version == 1


def _change_request(workspace: str, title: str) -> ChangeRequest:
    author = user_with_role(Role.EDITOR)
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


@pytest.mark.usefixtures("two_workspaces")
def test_change_request_lists_and_pages_show_the_request_s_workspace_only(
    client_for: Callable[[Role | None], Client],
) -> None:
    in_staging = _change_request("staging", "Staging footer")
    in_production = _change_request("production", "Production footer")
    reviewer = client_for(Role.REVIEWER)

    staging_list = reviewer.get("/w/staging/changes/?view=all").content.decode()
    production_list = reviewer.get("/w/production/changes/?view=all").content.decode()

    assert "Staging footer" in staging_list
    assert "Production footer" not in staging_list
    assert "Production footer" in production_list
    assert reviewer.get(f"/w/staging/changes/{in_staging.pk}/").status_code == 200
    assert reviewer.get(f"/w/staging/changes/{in_production.pk}/").status_code == 404
    assert reviewer.get(f"/w/production/changes/{in_production.pk}/").status_code == 200


@pytest.mark.usefixtures("two_workspaces")
def test_the_catalog_list_shows_the_request_s_workspace_only(
    client_for: Callable[[Role | None], Client],
) -> None:
    Catalog.objects.create(workspace="staging", name="staging_only_catalog")
    Catalog.objects.create(workspace="production", name="production_only_catalog")
    viewer = client_for(Role.VIEWER)

    page = viewer.get("/w/production/catalogs/").content.decode()

    assert "production_only_catalog" in page
    assert "staging_only_catalog" not in page
    assert viewer.get("/w/production/catalogs/staging_only_catalog/").status_code == 404


@pytest.mark.usefixtures("two_workspaces")
def test_content_search_looks_in_one_workspace() -> None:
    from templates_app import search
    from templates_app.models import ResourceType, VersionSource
    from templates_app.services import version_record

    for braze_id, name in (("b-staging", "spring_banner"), ("b-production", "spring_promo")):
        version_record(
            resource_type=ResourceType.CONTENT_BLOCK,
            braze_id=braze_id,
            snapshot={"name": name, "description": "", "content": "<p>Spring!</p>", "tags": []},
            source=VersionSource.SYNCED,
        )
    ContentVersion.objects.filter(braze_id="b-production").update(workspace="production")

    def found(workspace: str | None) -> list[str]:
        page = search.content_search(query="spring", workspace=workspace)
        return [hit.braze_id for hit in page.hits]

    assert found(None) == ["b-staging"]
    assert found("production") == ["b-production"]


@pytest.mark.usefixtures("two_workspaces")
def test_work_done_in_a_workspace_uses_its_client_and_writes_its_rows() -> None:
    from console.braze import get_client
    from console.workspaces import workspace_active, workspace_override

    assert workspace_active().key == "staging"  # outside any: the default
    with workspace_override("production") as production:
        assert workspace_active() == production
        assert Catalog.objects.create(name="made_here").workspace == "production"
        assert get_client().limiter is get_client(workspace="production").limiter
    assert workspace_active().key == "staging"
    assert get_client().limiter is not get_client(workspace="production").limiter


@pytest.mark.usefixtures("two_workspaces")
def test_a_request_under_a_workspace_works_in_it_until_it_is_answered(
    rf: RequestFactory,
) -> None:
    from console.workspace_urls import WorkspaceMiddleware
    from console.workspaces import workspace_active

    seen: list[str] = []

    def answer(request: HttpRequest) -> HttpResponse:
        seen.append(workspace_active().key)
        return HttpResponse()

    middleware = WorkspaceMiddleware(answer)
    middleware(rf.get("/w/production/catalogs/"))
    middleware(rf.get("/w/staging/catalogs/"))

    assert seen == ["production", "staging"]
    assert workspace_active().key == "staging"  # the default again once answered


@pytest.mark.usefixtures("two_workspaces")
def test_a_change_request_is_proposed_in_the_workspace_being_worked_in_and_applied_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console.changes import services
    from console.changes.services import change_request_apply, change_request_propose
    from console.workspaces import workspace_active, workspace_override

    editor = user_with_role(Role.EDITOR)
    with workspace_override("production"):
        cr = change_request_propose(
            actor=editor,
            resource_type="content_block",
            identifier="b-1",
            action="update",
            payload={"content": "<p>new</p>"},
            base_snapshot={"content": "<p>old</p>"},
            title="Footer",
        )
    assert cr.workspace == "production"
    applied_in: list[str] = []

    def apply(**_: object) -> ChangeRequest:
        applied_in.append(workspace_active().key)
        return cr

    monkeypatch.setattr(services, "_apply", apply)

    change_request_apply(change_request_id=cr.pk, actor_id=editor.pk)

    assert applied_in == ["production"]


@pytest.mark.usefixtures("two_workspaces")
def test_preview_profiles_and_connected_content_samples_are_kept_per_workspace() -> None:
    from console.workspaces import workspace_override
    from templates_app.models import PreviewProfile
    from templates_app.selectors import connected_content_samples, preview_profile_list
    from templates_app.services import connected_content_samples_save

    editor = user_with_role(Role.EDITOR)
    with workspace_override("production"):
        PreviewProfile.objects.create(name="Ana", language="pt")
        connected_content_samples_save(actor=editor, samples={"https://api.example/*": "{}"})
    PreviewProfile.objects.create(name="Ana", language="en")  # the same name in staging

    with workspace_override("production"):
        assert [(p.name, p.language) for p in preview_profile_list()] == [("Ana", "pt")]
        assert connected_content_samples() == {"https://api.example/*": "{}"}
    assert [(p.name, p.language) for p in preview_profile_list()] == [("Ana", "en")]
    assert connected_content_samples() == {}
