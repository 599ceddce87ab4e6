"""The crawl: every URL the project defines, requested as each role (anonymous, signed in
without a role, and each console role), with real objects behind every path parameter, as a
page and as each htmx request the screens make (``HX-Request``, and ``HX-Target`` for the
fragments views answer).

Every response must have:

- the status the access matrix gives the role: who may open what is ``MATRIX`` in
  ``test_access_matrix.py``; what an allowed request answers for a real object is ``CRAWL``
  here, and ``OBJECT_REFUSALS`` names objects a role may not open although it opens others of
  their kind;
- the security headers: a CSP whose nonce is on every script tag, ``frame-ancestors 'none'``,
  ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy``, ``Cross-Origin-Opener-Policy``
  (the sandboxed preview frame has its own CSP and may be framed by the console itself);
- ``Cache-Control`` with ``no-store`` and ``private`` (``console/cache_headers.py``);
- none of the ``MARKERS`` planted in data the role may not see (a dashboard user's email in a
  change request, an invited console user's email, a value only the audit trail holds...), and
  each marker the role may see on at least one page, so the check cannot pass by seeing nothing.

Braze is the sandbox, so content and dashboard-user pages show real objects. About 5 s a role
on a quiet machine (marked slow).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from pytest_django.fixtures import Settings

from catalogs.models import Catalog, CatalogSelection
from console.roles import Role
from tests.console.test_access_matrix import MATRIX, _url_names
from tests.factories import CatalogFactory, catalog_item_create, user_with_role
from tests.fixtures.sandbox import SandboxHandle

ANONYMOUS, NO_ROLE = "anonymous", "no-role"
WHO: list[str] = [ANONYMOUS, NO_ROLE, *Role]

CHANGE_READERS = frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN})


@dataclass(frozen=True)
class Marker:
    values: tuple[str, ...]
    seen_by: frozenset[Role]
    what: str


# Values planted in the objects the world holds, and the roles whose pages may show them.
MARKERS: dict[str, Marker] = {
    "catalog": Marker(
        ("Crawl-item-7d1e",), frozenset(Role), "a mirrored catalog item's value (anyone browsing)"
    ),
    "proposal": Marker(
        ("crawl-template-5c2a",), CHANGE_READERS, "a proposed email template's name"
    ),
    # Admins propose and approve changes to dashboard users; Auditors read all.
    "staff": Marker(
        ("crawl.staff.4b9e@example.com", "Quillon", "Dashmarker"),
        frozenset({Role.AUDITOR, Role.ADMIN}),
        "a dashboard user's email and name in a change request",
    ),
    "console": Marker(
        ("crawl.invitee.8f3d@example.com",),
        frozenset({Role.AUDITOR, Role.ADMIN}),
        "an invited console user's email",
    ),
    "audit": Marker(
        ("crawl-audit-note-2e6f",),
        frozenset({Role.AUDITOR, Role.ADMIN}),
        "a value only the audit trail holds",
    ),
    # A dashboard user as Braze (SCIM) holds it: the sandbox's seeded account.
    "scim": Marker(
        ("ada.admin@example.com",),
        frozenset({Role.AUDITOR, Role.ADMIN}),
        "a dashboard user read from Braze",
    ),
}
DASHBOARD_EMAIL = MARKERS["scim"].values[0]

# Objects a role may not open although it opens others of their kind: Editors and Reviewers
# read content requests, never the requests about people (their staff's personal data).
OBJECT_REFUSALS: dict[str, frozenset[str]] = {
    Role.EDITOR: frozenset({"staff"}),
    Role.REVIEWER: frozenset({"staff"}),
}
# Where the code does not refuse them yet: the crawl leaves these out (none today).
KNOWN_GAPS: dict[str, frozenset[str]] = {}


@dataclass
class World:
    """The objects behind the path parameters, made once per test."""

    crawler: User | None
    catalog: str = "crawl"
    item_id: str = "item-1"
    job_id: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # kind -> change request id
    audit_seqs: dict[str, int] = field(default_factory=dict)  # marker -> entry seq
    invitee_id: int = 0
    invitee_uidb64: str = ""
    invitee_token: str = ""
    email_template_id: str = ""
    content_block_id: str = ""
    preference_center_id: str = ""
    dashboard_user_id: str = ""
    preview_token: str = "none"
    preview_profile_id: int = 0
    other_device_id: int = 0


@dataclass(frozen=True)
class Target:
    """One request of a URL name: its path parameters, query and what an allowed role gets."""

    kwargs: Callable[[World], dict[str, Any]] = lambda w: {}
    ok: frozenset[int] = frozenset({200})
    query: str = ""
    hx_targets: tuple[str, ...] = ()  # HX-Target values the view answers with a fragment
    hx_ok: frozenset[int] | None = None  # what htmx requests get, when not `ok`
    about: str = ""  # the marker kind of the object requested (OBJECT_REFUSALS, KNOWN_GAPS)


def _ok(*codes: int) -> frozenset[int]:
    return frozenset(codes)


def _cat(w: World) -> dict[str, Any]:
    return {"name": w.catalog}


def _item(w: World) -> dict[str, Any]:
    return {"name": w.catalog, "item_id": w.item_id}


def _job(w: World) -> dict[str, Any]:
    return {"name": w.catalog, "job_id": w.job_id}


def _cr(kind: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"pk": w.requests[kind]}


REQUEST_KINDS = (
    "catalog",
    "catalog_item",
    "bulk",
    "email_template",
    "content_block",
    "preference_center",
    "dashboard_user",
    "content_bundle",
)
CONTENT_KINDS = ("email_template", "content_block", "preference_center")
BLOCK = "content_block"


def _seq(marker: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"seq": w.audit_seqs[marker]}


def _about(kind: str) -> str:
    return "staff" if kind == "dashboard_user" else ""


# In order: the preview token is requested before the crawl stashes more previews than a
# person keeps, and logout comes last (it ends the crawler's session).
CRAWL: dict[str, tuple[Target, ...]] = {
    "templates_app:preview": (Target(lambda w: {"token": w.preview_token}),),
    "home": (Target(),),
    "home_seen": (Target(ok=_ok(400)),),
    "healthz": (Target(ok=_ok(200, 503)),),
    # A session never opens /metrics, whatever its roles: only METRICS_TOKEN (set below) does.
    "metrics": (Target(ok=_ok(401)),),
    "login": (Target(),),
    "sso:start": (Target(ok=_ok(302)),),
    "sso:callback": (Target(ok=_ok(302)),),
    "password_change": (Target(),),
    "password_change_done": (Target(),),
    # No sign-in under way: anonymous is sent to sign in, anyone signed in goes home.
    **{
        f"mfa:{name}": (Target(ok=_ok(302)),)
        for name in ("verify", "enrol", "passkey_options", "passkey_signin")
    },
    # Options for a new passkey (JSON) for anyone signed in; an empty answer is refused.
    "mfa:passkey_new_options": (Target(ok=_ok(200, 302)),),
    "mfa:passkey_new": (Target(ok=_ok(302)),),
    "mfa:devices": (Target(),),
    "mfa:totp_add": (Target(),),
    # The crawler has an authenticator app, so new recovery codes are shown.
    "mfa:recovery_codes": (Target(),),
    # Nobody removes another person's device through their own security page.
    "mfa:device_remove": (
        Target(lambda w: {"kind": "totp", "pk": w.other_device_id}, ok=_ok(404)),
    ),
    "mfa:person": (Target(lambda w: {"pk": w.invitee_id}),),
    "changes:list": tuple(
        Target(query=query, hx_targets=("results",))
        for query in ("", "?view=all", "?view=review", "?view=mine")
    ),
    "changes:detail": tuple(Target(_cr(kind), about=_about(kind)) for kind in REQUEST_KINDS),
    # No `op`: an allowed role is sent back to the request with "Unknown action".
    "changes:act": tuple(
        Target(_cr(kind), ok=_ok(302), about=_about(kind)) for kind in REQUEST_KINDS
    ),
    "changes:policy": (Target(),),
    "notifications:preferences": (Target(),),
    "notifications:deliveries": (Target(),),
    "audit:list": (Target(hx_targets=("results",)),),
    "audit:detail": tuple(Target(_seq(marker)) for marker in ("staff", "console", "audit")),
    "audit:export": (Target(),),
    "audit:integrity": (Target(hx_targets=("verify-status", "results")),),
    # The screen's button asks for the status card; a plain form is sent back to the page.
    "audit:integrity_verify": (Target(ok=_ok(303), hx_ok=_ok(200), hx_targets=("verify-status",)),),
    "audit:checkpoint_issue": (Target(ok=_ok(303)),),
    "audit:erasure": (Target(),),
    "audit:erasure_confirm": (Target(ok=_ok(400)),),
    "catalogs:list": (Target(hx_targets=("results",)),),
    "catalogs:list_refresh": (Target(ok=_ok(302)),),
    "catalogs:detail": (Target(_cat, hx_targets=("sync",)),),
    "catalogs:refresh": (Target(_cat, ok=_ok(302)),),
    "catalogs:items": (Target(_cat, hx_targets=("results",)),),
    "catalogs:item_export": (Target(_cat),),
    "catalogs:item_detail": (Target(_item),),
    "catalogs:create": (Target(),),
    "catalogs:delete": (Target(_cat),),
    "catalogs:field_add": (Target(_cat),),
    "catalogs:field_delete": (Target(lambda w: {"name": w.catalog, "field_name": "price"}),),
    "catalogs:selection_create": (Target(_cat, hx_targets=("preview",)),),
    "catalogs:selection_delete": (
        Target(lambda w: {"name": w.catalog, "selection_name": "cheap"}),
    ),
    "catalogs:item_create": (Target(_cat),),
    "catalogs:item_edit": (Target(_item),),
    "catalogs:item_delete": (Target(_item),),
    "catalog_bulk:upload": (Target(_cat),),
    "catalog_bulk:jobs": (Target(_cat, hx_targets=("results",)),),
    "catalog_bulk:copy": (Target(_cat),),
    "catalog_bulk:job": (Target(_job, hx_targets=("job-live",)),),
    "catalog_bulk:errors": (Target(_job),),
    "catalog_bulk:report": (Target(_job),),
    # The job is under review already: the Editor is told so on the job's page.
    "catalog_bulk:propose": (Target(_job, ok=_ok(302)),),
    "catalog_bulk:control": (Target(_job, ok=_ok(302)),),
    "templates_app:email_templates": (Target(hx_targets=("results",)),),
    "templates_app:content_blocks": (Target(hx_targets=("results",)),),
    "templates_app:preference_centers": (Target(hx_targets=("results",)),),
    "templates_app:email_template_detail": (
        Target(lambda w: {"email_template_id": w.email_template_id}),
    ),
    "templates_app:content_block_detail": (
        Target(lambda w: {"content_block_id": w.content_block_id}),
    ),
    "templates_app:preference_center_detail": (
        Target(lambda w: {"preference_center_id": w.preference_center_id}),
    ),
    "templates_app:email_template_create": (Target(),),
    "templates_app:content_block_create": (Target(),),
    "templates_app:preference_center_create": (Target(),),
    "templates_app:email_template_edit": (
        Target(lambda w: {"email_template_id": w.email_template_id}),
    ),
    "templates_app:content_block_edit": (
        Target(lambda w: {"content_block_id": w.content_block_id}),
    ),
    "templates_app:preference_center_edit": (
        Target(lambda w: {"preference_center_id": w.preference_center_id}),
    ),
    # An empty form: the page again, with what is missing.
    "templates_app:preference_center_user_url": (
        Target(lambda w: {"preference_center_id": w.preference_center_id}, ok=_ok(400)),
    ),
    "templates_app:search": (
        Target(query="?q=welcome&history=1", hx_targets=("results",)),
        Target(lambda w: {}, query="?uses=email_footer&history=1", hx_targets=("results",)),
    ),
    "templates_app:history": (
        Target(
            lambda w: {"resource_type": BLOCK, "braze_id": w.content_block_id},
            hx_targets=("results",),
        ),
    ),
    "templates_app:version_diff": (
        Target(
            lambda w: {"resource_type": BLOCK, "braze_id": w.content_block_id}, query="?a=1&b=2"
        ),
    ),
    "templates_app:version_restore": (
        Target(
            lambda w: {"resource_type": BLOCK, "braze_id": w.content_block_id, "version": 1},
            ok=_ok(302),
        ),
    ),
    "templates_app:preview_live": (Target(),),
    "templates_app:preview_as": (Target(),),
    "templates_app:preview_as_item": (
        Target(lambda w: {"resource_type": BLOCK, "braze_id": w.content_block_id}),
    ),
    # No external id given: the page says one is needed, and no one is looked up.
    "templates_app:preview_as_braze_user": (
        Target(lambda w: {"resource_type": BLOCK, "braze_id": w.content_block_id}),
    ),
    "templates_app:change_preview_braze_user": (
        Target(_cr("content_block")),
        Target(_cr("dashboard_user"), ok=_ok(404), about="staff"),
    ),
    "templates_app:preview_profiles": (Target(hx_targets=("results",)),),
    "templates_app:preview_profile_create": (Target(),),
    "templates_app:preview_settings": (Target(),),
    "templates_app:preview_profile_edit": (Target(lambda w: {"pk": w.preview_profile_id}),),
    # The first request deletes it; the htmx variants then find nothing.
    "templates_app:preview_profile_delete": (
        Target(lambda w: {"pk": w.preview_profile_id}, ok=_ok(302, 404)),
    ),
    # Content requests have a rendered review page; other kinds are not found there.
    "templates_app:change_preview": (
        *(Target(_cr(kind)) for kind in CONTENT_KINDS),
        # The same person before and after (a person with no attributes).
        Target(_cr("content_block"), query="?profile="),
        Target(_cr("dashboard_user"), ok=_ok(404), about="staff"),
    ),
    "bundles:files": (Target(),),
    "bundles:export": (Target(),),
    # Nothing uploaded: the form says what is missing.
    "bundles:import": (Target(ok=_ok(400)),),
    "bundles:review": (Target(_cr("content_bundle")),),
    # One workspace: the screen lists its objects and has nowhere to promote them to.
    "bundles:promote": (Target(hx_targets=("promotion-objects", "promotion-preview")),),
    "users_admin:index": (Target(),),
    "users_admin:console_users": (Target(hx_targets=("results",)),),
    "users_admin:user_create": (Target(),),
    "users_admin:user_detail": (Target(lambda w: {"pk": w.invitee_id}),),
    "users_admin:user_workspace_roles": (Target(lambda w: {"pk": w.invitee_id}),),
    # The invitation link moves its token into the session (302), then shows the form; a
    # spent or made-up link shows a page that says so.
    "users_admin:set_password": (
        Target(lambda w: {"uidb64": w.invitee_uidb64, "token": w.invitee_token}, ok=_ok(302)),
        Target(lambda w: {"uidb64": w.invitee_uidb64, "token": "set-password"}),
        Target(lambda w: {"uidb64": "MQ", "token": "expired"}),
    ),
    "users_admin:dashboard_users": (
        Target(hx_targets=("results",)),
        Target(query=f"?email={DASHBOARD_EMAIL}", hx_targets=("results",)),
    ),
    "users_admin:dashboard_user_detail": (Target(lambda w: {"user_id": w.dashboard_user_id}),),
    "users_admin:dashboard_user_create": (Target(),),
    "users_admin:dashboard_user_edit": (Target(lambda w: {"user_id": w.dashboard_user_id}),),
    "users_admin:dashboard_user_remove": (Target(lambda w: {"user_id": w.dashboard_user_id}),),
    "users_admin:access_review": (Target(hx_targets=("review-run",)),),
    # Without a look-up to export, the allowed are sent back to the review with a message.
    "users_admin:access_review_export": (Target(ok=_ok(302)),),
    "logout": (Target(ok=_ok(302)),),
}


def test_the_crawl_requests_every_url_the_project_defines() -> None:
    names = set(_url_names(get_resolver().url_patterns))
    assert names - CRAWL.keys() == set(), "add these URL names to CRAWL"
    assert CRAWL.keys() - names == set(), "these CRAWL entries no longer exist"
    assert list(CRAWL)[-1] == "logout"


# --- the world -------------------------------------------------------------------------------


def _first(sandbox: SandboxHandle, path: str, key: str, id_key: str) -> str:
    with sandbox.client() as http:
        rows = http.get(path).raise_for_status().json()[key]
    return str(rows[0][id_key])


def _build(sandbox: SandboxHandle, who: str) -> World:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from bundles.selectors import workspace_files
    from bundles.services import content_import
    from catalog_bulk.services import bulk_job_parse, bulk_job_propose, bulk_job_upload
    from catalogs.services import catalog_item_propose, catalog_propose_create
    from console.audit.models import AuditEntry
    from console.audit.services import audit_append
    from console.workspaces import workspace_default
    from templates_app import kinds
    from templates_app import selectors as content
    from templates_app import services as templates
    from templates_app.models import ResourceType, VersionSource
    from users_admin import services as people

    crawler = None if who == ANONYMOUS else user_with_role(None if who == NO_ROLE else Role(who))
    world = World(crawler=crawler)
    editor, admin = user_with_role(Role.EDITOR), user_with_role(Role.ADMIN)

    catalog = cast(Catalog, CatalogFactory(name=world.catalog))
    catalog_item_create(catalog, world.item_id, name=MARKERS["catalog"].values[0], price=1)
    catalog_item_create(catalog, "item-2", name="Second", price=2)
    CatalogSelection.objects.create(catalog=catalog, name="cheap", definition={"filters": []})

    job = bulk_job_upload(
        actor=editor,
        catalog=catalog,
        operation="upsert",
        upload=SimpleUploadedFile("items.csv", b"id,name,price\nitem-2,Renamed,3\nitem-3,New,x\n"),
    )
    job = bulk_job_parse(job_id=job.pk)
    world.job_id = job.pk

    world.email_template_id = _first(
        sandbox, "/templates/email/list", "templates", "email_template_id"
    )
    world.content_block_id = _first(
        sandbox, "/content_blocks/list", "content_blocks", "content_block_id"
    )
    world.preference_center_id = _first(
        sandbox, "/preference_center/v1/list", "preference_centers", "preference_center_api_id"
    )
    with sandbox.client() as http:
        found = http.get(
            "/scim/v2/Users",
            params={"filter": f'userName eq "{DASHBOARD_EMAIL}"'},
            headers=sandbox.scim_headers(),
        )
    world.dashboard_user_id = found.raise_for_status().json()["Resources"][0]["id"]

    # Two versions of a Content Block, for its history, a diff and a restore.
    block = content.content_block_get(content_block_id=world.content_block_id)
    snapshot = content.content_block_snapshot(block)
    for text in (snapshot.get("content", ""), "<p>The crawl's second version</p>"):
        templates.version_record(
            resource_type=ResourceType.CONTENT_BLOCK,
            braze_id=world.content_block_id,
            snapshot={**snapshot, "content": text},
            source=VersionSource.SYNCED,
        )

    html = "<html><body><p>Crawl</p></body></html>"
    requests = {
        "catalog": catalog_propose_create(
            actor=editor, name="crawl_new", description="", fields=[("name", "string")]
        ),
        "catalog_item": catalog_item_propose(
            actor=editor,
            catalog=catalog,
            action="update",
            item_id=world.item_id,
            values={"price": 5},
        ),
        "bulk": bulk_job_propose(actor=editor, job=job),
        "email_template": templates.content_propose(
            actor=editor,
            kind=kinds.EMAIL_TEMPLATES,
            braze_id=None,
            data={"template_name": MARKERS["proposal"].values[0], "subject": "Hi", "body": html},
            base_snapshot=None,
        ),
        "content_block": templates.content_propose(
            actor=editor,
            kind=kinds.CONTENT_BLOCKS,
            braze_id=None,
            data={"name": "crawl_block", "content": html},
            base_snapshot=None,
        ),
        "preference_center": templates.content_propose(
            actor=editor,
            kind=kinds.PREFERENCE_CENTERS,
            braze_id=None,
            data={
                "name": "crawl_center",
                "preference_center_page_html": html,
                "confirmation_page_html": html,
            },
            base_snapshot=None,
        ),
        "dashboard_user": people.dashboard_user_propose_create(
            actor=admin,
            email=MARKERS["staff"].values[0],
            given_name=MARKERS["staff"].values[1],
            family_name=MARKERS["staff"].values[2],
            department="crawl",
            permissions={
                "companyPermissions": [],
                "appGroup": [{"appGroupName": "demo", "appGroupPermissions": ["view_campaigns"]}],
            },
        ),
    }
    # An import: the workspace's files with one block edited, as one bundle request.
    files, _ = workspace_files(workspace=workspace_default())
    files[f"content_blocks/{snapshot['name']}.liquid"] = html.encode()
    imported = content_import(actor=editor, workspace=workspace_default(), files=files)
    assert imported.change_request is not None
    requests["content_bundle"] = imported.change_request
    world.requests = {kind: cr.pk for kind, cr in requests.items()}

    invitee = people.user_create(
        actor=admin,
        username="crawl-invitee",
        email=MARKERS["console"].values[0],
        first_name="Invited",
        last_name="Person",
        roles=set(),
        base_url="http://testserver",
    )
    world.invitee_id = invitee.pk
    world.invitee_uidb64 = urlsafe_base64_encode(force_bytes(invitee.pk))
    world.invitee_token = people.password_set_path(user=invitee).rstrip("/").rsplit("/", 1)[-1]

    audit_append(actor=admin, action="crawl.note", data={"note": MARKERS["audit"].values[0]})
    entries = AuditEntry.objects.order_by("-seq")
    world.audit_seqs = {
        "staff": entries.get(
            action="change_request.proposed", change_request_id=world.requests["dashboard_user"]
        ).seq,
        "console": entries.get(action="user.invited").seq,
        "audit": entries.get(action="crawl.note").seq,
    }

    world.preview_profile_id = templates.preview_profile_save(
        actor=editor,
        profile=None,
        data={
            "name": "Crawl",
            "attributes": {"first_name": "Crawl"},
            "language": "en",
            "time_zone": "",
        },
    ).pk

    if crawler is not None:
        world.preview_token = templates.preview_stash(user=crawler, html=html)
        TOTPDevice.objects.create(user=crawler, name="Crawler's app")
    world.other_device_id = TOTPDevice.objects.create(user=admin, name="Admin's app").pk
    return world


@pytest.fixture
def braze_world(
    braze_sandbox: SandboxHandle, settings: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SandboxHandle]:
    """The console pointed at the sandbox (SCIM included), nothing rate-limited, uploads in a
    temporary directory."""
    from console import health
    from console.braze import close_client

    braze_sandbox.admin.set_rate_limits_enabled(False)
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_SCIM_TOKEN = braze_sandbox.scim_token
    settings.BRAZE_SCIM_ORIGIN = braze_sandbox.scim_origin
    settings.BRAZE_SCIM_PERMISSIONS = "legacy" if braze_sandbox.reference else "granular"
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"crawl-{uuid.uuid4().hex}",
        "margin_seconds": 0.0,
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.METRICS_TOKEN = "crawl-metrics-token"
    # No Celery worker runs here: /healthz would wait a second for one in every test.
    monkeypatch.setattr(health, "check_celery", lambda: (True, "not asked by the crawl"))
    close_client()
    cache.clear()
    yield braze_sandbox
    close_client()
    cache.clear()


# --- the checks ------------------------------------------------------------------------------


def _body(response: HttpResponseBase) -> str:
    if isinstance(response, StreamingHttpResponse):
        data = b"".join(cast(Iterator[bytes], response.streaming_content))
    else:
        data = cast(HttpResponse, response).content
    return data.decode(errors="replace")


def _directives(csp: str) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in csp.split(";") if part.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def _header_problems(response: HttpResponseBase, body: str, *, preview: bool) -> list[str]:
    import re

    problems = []
    expected = {
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        # The preview frame is shown inside the console's own pages, and sends no referrer.
        "X-Frame-Options": "SAMEORIGIN" if preview else "DENY",
        "Referrer-Policy": "no-referrer" if preview else "same-origin",
    }
    for header, value in expected.items():
        if response.get(header) != value:
            problems.append(f"{header} is {response.get(header)!r}, not {value!r}")
    cache_control = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    if not {"no-store", "private"} <= cache_control:
        problems.append(f"Cache-Control is {response.get('Cache-Control')!r}: no no-store, private")

    csp = _directives(response.get("Content-Security-Policy", ""))
    wanted = (
        {"sandbox": "", "default-src": "'none'", "frame-ancestors": "'self'"}
        if preview
        else {
            "frame-ancestors": "'none'",
            "object-src": "'none'",
            "base-uri": "'none'",
            "form-action": "'self'",
            "default-src": "'self'",
        }
    )
    for directive, value in wanted.items():
        if csp.get(directive) != value:
            problems.append(f"CSP {directive} is {csp.get(directive)!r}, not {value!r}")
    if "unsafe-inline" in csp.get("script-src", "") or "unsafe-eval" in csp.get("script-src", ""):
        problems.append(f"CSP script-src allows inline or eval: {csp.get('script-src')!r}")

    if response.get("Content-Type", "").startswith("text/html") and not preview:
        nonce = re.search(r"'nonce-([^']+)'", csp.get("script-src", ""))
        scripts = re.findall(r"<script\b[^>]*>", body)
        if "<html" in body and not scripts:
            problems.append("a full page without the htmx script")
        for tag in scripts:
            # script-src 'self' lets the console's own files run; anything else needs the nonce.
            own_file = re.search(r'\ssrc="/(?!/)', tag)
            if not own_file and (not nonce or f'nonce="{nonce.group(1)}"' not in tag):
                problems.append(f"a script without the CSP's nonce: {tag}")
    return problems


def _status_problems(
    response: HttpResponseBase, *, name: str, target: Target, who: str, htmx: bool
) -> list[str]:
    rule = MATRIX[name]
    status = response.status_code
    if who == ANONYMOUS and not rule.public:
        login = reverse("login")
        if status != 302 or not response.get("Location", "").startswith(login):
            return [f"status {status}, not the login page (302)"]
        hx_redirect = response.get("HX-Redirect")
        if htmx and hx_redirect != response["Location"]:
            return [f"an htmx request sent to sign in without HX-Redirect ({hx_redirect!r})"]
        return []
    if who != ANONYMOUS and name == "login":
        expected = _ok(302)  # signed-in users are sent on from the login page
    elif who == ANONYMOUS or rule.any_signed_in or (who != NO_ROLE and Role(who) in rule.allowed):
        refused = target.about and target.about in OBJECT_REFUSALS.get(who, frozenset())
        ok = target.hx_ok if htmx and target.hx_ok is not None else target.ok
        expected = _ok(403, 404) if refused else ok
    else:
        expected = _ok(403)
    if status not in expected:
        return [f"status {status}, not {sorted(expected)}"]
    return []


@dataclass
class CrawlResult:
    problems: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # markers found on some page
    requests: int = 0


def _variants(target: Target) -> Iterator[tuple[str, dict[str, str]]]:
    yield "", {}
    yield " [htmx]", {"HX-Request": "true"}
    for hx_target in target.hx_targets:
        yield f" [htmx #{hx_target}]", {"HX-Request": "true", "HX-Target": hx_target}


def crawl(
    world: World, who: str, *, gaps: frozenset[str], names: frozenset[str] | None = None
) -> CrawlResult:
    """Request every target of CRAWL (or those of `names`) as `who`; `gaps` are KNOWN_GAPS
    not to check."""
    client = Client(raise_request_exception=False)
    if world.crawler is not None:
        client.force_login(world.crawler)
    result = CrawlResult()
    for name, targets in CRAWL.items():
        if names is not None and name not in names:
            continue
        method = MATRIX[name].method
        for target in targets:
            url = reverse(name, kwargs=target.kwargs(world) or None) + target.query
            for label, headers in _variants(target):
                response = getattr(client, method)(url, headers=headers)
                result.requests += 1
                body = _body(response)
                where = f"{who} {method.upper()} {url}{label}"
                problems = []
                if target.about not in gaps:
                    problems += _status_problems(
                        response, name=name, target=target, who=who, htmx=bool(headers)
                    )
                preview = name == "templates_app:preview" and response.status_code == 200
                problems += _header_problems(response, body, preview=preview)
                if "HX-Target" in headers and response.status_code == 200:
                    if "<html" in body:
                        problems.append("a whole page where htmx asked for a fragment")
                    if "<script" in body:
                        problems.append("a fragment with a script (the page's CSP nonce differs)")
                for kind, marker in MARKERS.items():
                    if any(value in body for value in marker.values):
                        result.seen.add(kind)
                        may = who not in (ANONYMOUS, NO_ROLE) and Role(who) in marker.seen_by
                        if not may and kind not in gaps:
                            problems.append(f"shows {marker.what} ({kind} marker)")
                result.problems += [f"{where}: {problem}" for problem in problems]
    return result


@pytest.fixture
def world_for(braze_world: SandboxHandle, db: None) -> Callable[[str], World]:
    return lambda who: _build(braze_world, who)


@pytest.mark.slow
@pytest.mark.parametrize("who", WHO)
def test_each_role_gets_what_it_may_and_every_response_is_protected(
    world_for: Callable[[str], World], who: str
) -> None:
    world = world_for(who)
    gaps = KNOWN_GAPS.get(who, frozenset())
    result = crawl(world, who, gaps=gaps)
    assert not result.problems, f"{len(result.problems)} problems:\n" + "\n".join(result.problems)
    if who not in (ANONYMOUS, NO_ROLE):
        visible = {kind for kind, marker in MARKERS.items() if Role(who) in marker.seen_by}
        assert visible <= result.seen, f"{who} never saw {visible - result.seen}: crawl too thin"
    assert result.requests > 150


# Screens besides changes:* that show change requests or count them.
CHANGE_SCREENS = frozenset(
    {"home", "templates_app:change_preview", "catalogs:item_detail", "bundles:review"}
)


@pytest.mark.slow
def test_editors_get_nothing_of_change_requests_about_people(
    world_for: Callable[[str], World],
) -> None:
    """An Editor opens content change requests, never one about a dashboard user: the
    request itself is refused and no page (lists, nav, previews) shows its email or name."""
    screens = frozenset(
        name for name in CRAWL if name.startswith("changes:") or name in CHANGE_SCREENS
    )
    result = crawl(world_for(Role.EDITOR), Role.EDITOR, gaps=frozenset(), names=screens)
    assert not result.problems, "\n".join(result.problems)
