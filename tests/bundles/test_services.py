"""Export, import and apply against the Braze sandbox: the tree is the same every time,
an import proposes exactly what changed, and a bundle is applied part by part in include
order, each part's outcome recorded, a failed part retried alone."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from bundles.appliers import RESOURCE_TYPE
from bundles.content import Pick
from bundles.models import BundlePart, PartOutcome
from bundles.selectors import Promotion, promotion_read, workspace_files
from bundles.services import content_import, promotion_propose
from console.audit import events
from console.audit.models import AuditEntry
from console.braze import BrazeServerError, get_client
from console.braze.client import BrazeClient
from console.changes.models import ChangeRequest, ChangeState
from console.changes.services import (
    ChangeRequestError,
    change_request_apply,
    change_request_approve,
    change_request_retry,
)
from console.roles import Role, user_workspace_roles_assign
from console.workspaces import workspace_default, workspace_get
from templates_app.models import ContentVersion
from tests.factories import user_with_role
from tests.fixtures.promotion import production_names, two_workspaces
from tests.fixtures.sandbox import SandboxHandle
from tests.templates_app.conftest import block_named

pytestmark = pytest.mark.django_db


def _export(directory: Path) -> dict[str, bytes]:
    out = io.StringIO()
    call_command(
        "content_export", "--workspace", workspace_default().key, str(directory), stdout=out
    )
    assert "Exported" in out.getvalue()
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _import(directory: Path, author: User) -> str:
    out = io.StringIO()
    call_command(
        "content_import",
        "--workspace",
        workspace_default().key,
        "--author",
        author.username,
        str(directory),
        stdout=out,
    )
    return out.getvalue()


def test_two_exports_without_a_change_are_byte_identical(
    braze: SandboxHandle, tmp_path: Path
) -> None:
    first = _export(tmp_path / "one")
    second = _export(tmp_path / "two")

    assert first == second
    assert "content_blocks/greeting.liquid" in first
    assert "email_templates/Welcome.html" in first
    assert "catalogs/products.json" in first
    assert json.loads(first["workspace.json"])["workspace"] == workspace_default().key


def test_exporting_again_into_the_same_directory_leaves_exactly_the_export(
    braze: SandboxHandle, tmp_path: Path
) -> None:
    (tmp_path / "content_blocks").mkdir()
    (tmp_path / "content_blocks" / "deleted_since.liquid").write_text("old")
    files = _export(tmp_path)
    assert "content_blocks/deleted_since.liquid" not in files


def test_export_edit_one_file_import_proposes_exactly_that_edit(
    braze: SandboxHandle, tmp_path: Path, editor: User
) -> None:
    _export(tmp_path)
    body = tmp_path / "content_blocks" / "greeting.liquid"
    before = body.read_text()
    body.write_text("Hello {{${first_name} | default: 'friend'}},")

    said = _import(tmp_path, editor)

    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert f"Opened change request #{cr.pk} (1 parts)" in said
    assert cr.state == ChangeState.PENDING  # nothing applied: it waits for a reviewer
    assert cr.author == editor
    assert cr.diff == [
        {
            "field": "content_block:greeting/content",
            "before": before,
            "after": "Hello {{${first_name} | default: 'friend'}},",
            "change": "changed",
        }
    ]
    assert [p["name"] for p in cr.payload["parts"]] == ["greeting"]


def test_an_unchanged_tree_opens_nothing_and_says_so(
    braze: SandboxHandle, tmp_path: Path, editor: User
) -> None:
    _export(tmp_path)
    said = _import(tmp_path, editor)
    assert "no change request was opened" in said
    assert not ChangeRequest.objects.exists()


def test_malformed_files_are_each_named_and_nothing_is_proposed(
    braze: SandboxHandle, tmp_path: Path, editor: User
) -> None:
    _export(tmp_path)
    (tmp_path / "content_blocks" / "greeting.json").write_text("{")
    (tmp_path / "email_templates" / "Welcome.html").write_text("edited")
    (tmp_path / "email_templates" / "run.sh").write_text("rm -rf /")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was proposed"):
        call_command(
            "content_import",
            "--workspace",
            workspace_default().key,
            "--author",
            editor.username,
            str(tmp_path),
            stderr=err,
        )
    assert "email_templates/run.sh: is not a kind of file the export writes" in err.getvalue()
    assert not ChangeRequest.objects.exists()


def test_an_unknown_workspace_or_author_is_refused(
    braze: SandboxHandle, tmp_path: Path, editor: User
) -> None:
    with pytest.raises(CommandError, match="No workspace named 'nowhere'"):
        call_command("content_export", "--workspace", "nowhere", str(tmp_path))
    with pytest.raises(CommandError, match="No active console user"):
        call_command(
            "content_import",
            "--workspace",
            workspace_default().key,
            "--author",
            "ghost",
            str(tmp_path),
        )


def _new_block_and_template(editor: User) -> ChangeRequest:
    files, _ = workspace_files(workspace=workspace_default())
    block = {"name": "zz_promo", "description": "Promo", "tags": []}
    files["content_blocks/zz_promo.json"] = json.dumps(block).encode()
    files["content_blocks/zz_promo.liquid"] = b"<p>20% off</p>"
    template = json.loads(files["email_templates/Welcome.json"])
    files["email_templates/Promo Mail.json"] = json.dumps(
        {**template, "template_name": "Promo Mail"}
    ).encode()
    files["email_templates/Promo Mail.html"] = b"<div>{{content_blocks.${zz_promo}}}</div>"
    files["email_templates/Promo Mail.txt"] = b""
    result = content_import(actor=editor, workspace=workspace_default(), files=files)
    assert result.change_request is not None
    return result.change_request


def _writes(sent: list[tuple[str, str, Any]]) -> list[str]:
    return [path for method, path, _ in sent if method == "POST" and path.endswith("/create")]


def test_a_block_is_created_before_the_template_that_includes_it(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    cr = _new_block_and_template(editor)
    assert [(p["kind"], p["name"]) for p in cr.payload["parts"]] == [
        ("content_block", "zz_promo"),
        ("email_template", "Promo Mail"),
    ]
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert _writes(sent) == ["/content_blocks/create", "/templates/email/create"]
    assert block_named(braze, "zz_promo")["content"] == "<p>20% off</p>"
    outcomes = list(BundlePart.objects.filter(change_request=cr).values_list("name", "outcome"))
    assert outcomes == [("zz_promo", PartOutcome.APPLIED), ("Promo Mail", PartOutcome.APPLIED)]
    # One entry for the bundle's outcome, one per part.
    entries = AuditEntry.objects.filter(change_request_id=cr.pk)
    assert entries.filter(action=events.CHANGE_REQUEST_APPLIED).count() == 1
    assert list(
        entries.filter(action=events.BUNDLE_PART_APPLIED)
        .order_by("seq")
        .values_list("resource_type", "resource_id")
    ) == [("content_block", "zz_promo"), ("email_template", "Promo Mail")]


def test_a_failed_part_is_retried_alone(
    braze: SandboxHandle,
    editor: User,
    reviewer: User,
    sent: list[tuple[str, str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cr = _new_block_and_template(editor)
    create = BrazeClient.email_template_create

    def refused(self: BrazeClient, **kwargs: Any) -> str:
        raise BrazeServerError("Braze answered 500", operation="email_template_create")

    monkeypatch.setattr(BrazeClient, "email_template_create", refused)
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.FAILED
    assert "1 of 2 parts applied" in cr.error_message
    parts = {p.name: p for p in BundlePart.objects.filter(change_request=cr)}
    assert parts["zz_promo"].outcome == PartOutcome.APPLIED
    assert parts["Promo Mail"].outcome == PartOutcome.FAILED
    assert AuditEntry.objects.filter(
        change_request_id=cr.pk, action=events.BUNDLE_PART_FAILED, resource_id="Promo Mail"
    ).exists()

    monkeypatch.setattr(BrazeClient, "email_template_create", create)
    sent.clear()
    change_request_retry(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    assert _writes(sent) == ["/templates/email/create"]  # the block is not sent again
    parts = {p.name: p for p in BundlePart.objects.filter(change_request=cr)}
    assert parts["Promo Mail"].outcome == PartOutcome.APPLIED
    assert parts["Promo Mail"].attempts == 2
    assert parts["zz_promo"].attempts == 1


def test_a_template_waits_while_the_block_it_includes_fails(
    braze: SandboxHandle,
    editor: User,
    reviewer: User,
    sent: list[tuple[str, str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cr = _new_block_and_template(editor)

    def refused(self: BrazeClient, **kwargs: Any) -> Any:
        raise BrazeServerError("Braze answered 500", operation="content_block_create")

    monkeypatch.setattr(BrazeClient, "content_block_create", refused)
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.FAILED
    parts = {p.name: p for p in BundlePart.objects.filter(change_request=cr)}
    assert parts["zz_promo"].outcome == PartOutcome.FAILED
    assert parts["Promo Mail"].outcome == PartOutcome.WAITING
    assert _writes(sent) == []


def test_a_part_changed_in_braze_since_the_preview_is_a_conflict(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Hello!"
    files["content_blocks/email_header.liquid"] = b"<header>New</header>"
    result = content_import(actor=editor, workspace=workspace_default(), files=files)
    cr = result.change_request
    assert cr is not None
    braze.admin.edit_content_block(block_named(braze, "greeting")["content_block_id"], content="Yo")
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.CONFLICT
    assert _writes(sent) == []
    assert not [path for _, path, _ in sent if path.endswith("/update")]
    assert cr.current_snapshot is not None
    assert cr.current_snapshot["content_block:greeting/content"] == "Yo"
    assert (
        cr.current_snapshot["content_block:email_header/content"]
        == (cr.base_snapshot or {})["content_block:email_header/content"]
    )


def test_a_part_braze_would_refuse_is_named_by_its_file_and_nothing_is_proposed(
    braze: SandboxHandle, tmp_path: Path, editor: User
) -> None:
    _export(tmp_path)
    (tmp_path / "content_blocks" / "greeting.liquid").write_text("{% if %}")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was proposed"):
        call_command(
            "content_import",
            "--workspace",
            workspace_default().key,
            "--author",
            editor.username,
            str(tmp_path),
            stderr=err,
        )
    assert "content_blocks/greeting.liquid: content: Content contains malformed liquid" in (
        err.getvalue()
    )
    assert not ChangeRequest.objects.exists()


def test_a_new_catalog_in_the_files_is_created_before_the_block_that_reads_it(
    braze: SandboxHandle, editor: User, reviewer: User, sent: list[tuple[str, str, Any]]
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    schema = {
        "name": "gear",
        "description": "Gear",
        "fields": [{"name": "id", "type": "string"}, {"name": "label", "type": "string"}],
    }
    files["catalogs/gear.json"] = json.dumps(schema).encode()
    files["content_blocks/aa_gear.json"] = json.dumps(
        {"name": "aa_gear", "description": "", "tags": []}
    ).encode()
    files["content_blocks/aa_gear.liquid"] = b"{% catalog_items gear g-1 %}{{ items[0].label }}"
    result = content_import(actor=editor, workspace=workspace_default(), files=files)
    cr = result.change_request
    assert cr is not None
    assert [(p["kind"], p["name"]) for p in cr.payload["parts"]] == [
        ("catalog", "gear"),
        ("content_block", "aa_gear"),
    ]

    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    creates = ("/catalogs", "/content_blocks/create")
    assert [p for m, p, _ in sent if m == "POST" and p in creates] == list(creates)
    exported, _ = workspace_files(workspace=workspace_default())
    assert json.loads(exported["catalogs/gear.json"]) == schema


def test_a_part_refused_by_its_applier_is_recorded_and_the_others_still_go(
    braze: SandboxHandle,
    editor: User,
    reviewer: User,
    sent: list[tuple[str, str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Hello!"
    center = next(p for p in sorted(files) if p.endswith(".confirmation.html"))
    files[center] = b"<p>Thanks, saved.</p>"
    result = content_import(actor=editor, workspace=workspace_default(), files=files)
    cr = result.change_request
    assert cr is not None

    def broken(self: BrazeClient, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(BrazeClient, "content_block_update", broken)
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.FAILED
    parts = {p.name: p for p in BundlePart.objects.filter(change_request=cr)}
    assert parts["greeting"].outcome == PartOutcome.FAILED
    assert parts["greeting"].error_id == "RuntimeError"
    assert "a bug" not in parts["greeting"].message  # internals stay in the log
    (other,) = (p for name, p in parts.items() if name != "greeting")
    assert other.kind == "preference_center"
    assert other.outcome == PartOutcome.APPLIED


# --- promotion: staging to production ---------------------------------------------------------


@pytest.fixture
def workspaces(braze: SandboxHandle, settings: Settings) -> SandboxHandle:
    two_workspaces(settings, braze)
    return braze


def _promotion(*picks: Pick, declined: frozenset[str] = frozenset()) -> Promotion:
    return promotion_read(
        source=workspace_get("staging"),
        target=workspace_get("production"),
        picks=picks,
        declined=declined,
    )


SPRING_SALE = Pick("email_template", "Spring Sale")


def test_a_promotion_is_applied_in_the_target_block_first_and_a_draft_stays_a_draft(
    workspaces: SandboxHandle, editor: User, reviewer: User
) -> None:
    staging_ids = {
        b.name: b.content_block_id for b in get_client(workspace="staging").content_block_list()
    }
    # The console last made seasonal_banner a draft in staging (Braze never says so).
    ContentVersion.objects.create(
        workspace="staging",
        resource_type="content_block",
        braze_id=staging_ids["seasonal_banner"],
        version=1,
        name="seasonal_banner",
        snapshot={},
        digest="d",
        source="applied",
        state="draft",
    )
    promotion = _promotion(SPRING_SALE, Pick("content_block", "seasonal_banner"))
    cr = promotion_propose(actor=editor, promotion=promotion, digest=promotion.digest)

    assert cr.workspace == "production"
    parts = {p["name"]: p for p in cr.payload["parts"]}
    assert list(parts) == ["product_spotlight", "seasonal_banner", "Spring Sale"]
    assert parts["seasonal_banner"]["payload"]["state"] == "draft"
    assert parts["product_spotlight"]["payload"]["state"] == "active"

    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    blocks = production_names(workspaces, "content_blocks")
    assert {"product_spotlight", "seasonal_banner"} <= set(blocks)
    assert "Spring Sale" in production_names(workspaces, "templates")
    # Staging is untouched.
    assert "Spring Sale" in {t.template_name for t in get_client().email_template_list()}
    assert len(get_client().content_block_list()) == len(staging_ids)


def test_the_service_refuses_a_proposer_without_propose_in_the_target(
    workspaces: SandboxHandle,
) -> None:
    person = user_with_role(None)
    user_workspace_roles_assign(user=person, workspace="staging", roles=[Role.EDITOR])
    promotion = _promotion(SPRING_SALE)

    with pytest.raises(ChangeRequestError, match="propose"):
        promotion_propose(actor=person, promotion=promotion, digest=promotion.digest)
    assert not ChangeRequest.objects.exists()


def test_a_rename_the_source_s_history_knows_is_shown_as_such(
    workspaces: SandboxHandle,
) -> None:
    staging_ids = {
        b.name: b.content_block_id for b in get_client(workspace="staging").content_block_list()
    }
    # In staging, product_spotlight was once called "greeting", a name production still holds.
    for version, name in ((1, "greeting"), (2, "product_spotlight")):
        ContentVersion.objects.create(
            workspace="staging",
            resource_type="content_block",
            braze_id=staging_ids["product_spotlight"],
            version=version,
            name=name,
            snapshot={},
            digest=f"d{version}",
            source="synced",
        )

    promotion = _promotion(Pick("content_block", "product_spotlight"))

    assert promotion.renames == [
        'Content Block "product_spotlight" was called "greeting" before (the content history '
        'of staging); the target still holds "greeting": the promotion creates '
        '"product_spotlight" beside it and leaves "greeting" as it is.'
    ]
    assert [(p.action, p.name) for p in promotion.preview.changes.parts] == [
        ("create", "product_spotlight")
    ]


def test_a_declined_dependency_is_not_taken_and_the_promotion_says_what_will_be_missing(
    workspaces: SandboxHandle,
) -> None:
    promotion = _promotion(SPRING_SALE, declined=frozenset({"product_spotlight"}))

    assert promotion.preview.dependency_names == ["product_spotlight"]
    assert promotion.preview.taken == []
    assert [(p.action, p.name) for p in promotion.preview.changes.parts] == [
        ("create", "Spring Sale")
    ]
    assert promotion.preview.changes.missing == [
        'Email template "Spring Sale" includes the Content Block "product_spotlight", which '
        "the workspace does not hold"
    ]


def test_a_catalog_schema_the_target_lacks_is_promoted_empty(
    workspaces: SandboxHandle, editor: User, reviewer: User
) -> None:
    promotion = _promotion(Pick("catalog", "products"))
    assert [(p.action, p.kind, p.name) for p in promotion.preview.changes.parts] == [
        ("create", "catalog", "products")
    ]
    cr = promotion_propose(actor=editor, promotion=promotion, digest=promotion.digest)
    change_request_approve(actor=reviewer, change_request=cr)
    cr = change_request_apply(change_request_id=cr.pk, actor_id=reviewer.pk)

    assert cr.state == ChangeState.APPLIED, cr.error_message
    production = get_client(workspace="production").catalog_list()
    staging = {c.name: c for c in get_client().catalog_list()}
    assert [(c.name, c.fields) for c in production] == [("products", staging["products"].fields)]
    assert list(get_client(workspace="production").catalog_item_list(catalog_name="products")) == []
