"""Every URL the project defines by every role: the status each one must get.

The table is written by hand on purpose: it is the specification of who may open
what, independent of the decorators it checks. A URL missing from the table fails
`test_every_url_is_in_the_matrix`, so new screens cannot skip this review.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from pytest_django.fixtures import Settings

from catalogs.models import Catalog
from console.roles import Role

ALL = frozenset(Role)
NOBODY: frozenset[Role] = frozenset()
_BRAZE_READ = frozenset({200, 404, 502})


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[Role]
    kwargs: dict[str, object] = field(default_factory=dict)
    public: bool = False  # anonymous users get the page itself, not the login page
    any_signed_in: bool = False  # also a user with no role
    method: str = "get"
    ok_status: frozenset[int] = frozenset({200})
    # Opened by a bearer token only: no session, whatever its roles, gets more than ok_status.
    bearer: bool = False


MATRIX: dict[str, Rule] = {
    "home": Rule(ALL, any_signed_in=True),
    # Marks what the home showed as seen; without an entry number it is refused.
    "home_seen": Rule(ALL, any_signed_in=True, method="post", ok_status=frozenset({400})),
    "healthz": Rule(ALL, public=True, any_signed_in=True, ok_status=frozenset({200, 503})),
    # Prometheus' scrape: the METRICS_TOKEN bearer only (the fixture below sets one), so every
    # role and anonymous are refused alike (tests/console/metrics: the token opens it).
    "metrics": Rule(
        NOBODY, public=True, any_signed_in=True, bearer=True, ok_status=frozenset({401})
    ),
    "login": Rule(NOBODY, public=True),
    "logout": Rule(ALL, any_signed_in=True, public=True, method="post", ok_status=frozenset({302})),
    # Single sign-on (sso/): without it configured (as here) both send everyone to the login
    # page; tests/sso runs them against a real provider.
    "sso:start": Rule(ALL, any_signed_in=True, public=True, ok_status=frozenset({302})),
    "sso:callback": Rule(ALL, any_signed_in=True, public=True, ok_status=frozenset({302})),
    "password_change": Rule(ALL, any_signed_in=True),
    "password_change_done": Rule(ALL, any_signed_in=True),
    # The second step of a password sign-in: without one under way, anonymous people are sent
    # to sign in and signed-in people home (tests/mfa/test_views.py: with one under way).
    **{
        f"mfa:{name}": Rule(
            ALL, public=True, any_signed_in=True, method=method, ok_status=frozenset({302})
        )
        for name, method in (
            ("verify", "get"),
            ("enrol", "get"),
            ("passkey_options", "post"),
            ("passkey_signin", "post"),
        )
    },
    # Adding a passkey: at that step (anonymous), or signed in, whatever the role. An empty
    # answer is refused (audited) and sent back.
    "mfa:passkey_new_options": Rule(ALL, public=True, any_signed_in=True, method="post"),
    "mfa:passkey_new": Rule(
        ALL, public=True, any_signed_in=True, method="post", ok_status=frozenset({302})
    ),
    # One's own second factors: anyone signed in (a device that is not theirs is a 404).
    "mfa:devices": Rule(ALL, any_signed_in=True),
    "mfa:totp_add": Rule(ALL, any_signed_in=True),
    "mfa:device_remove": Rule(
        ALL,
        any_signed_in=True,
        kwargs={"kind": "totp", "pk": 999999},
        method="post",
        ok_status=frozenset({404}),
    ),
    # Without a factor there are no recovery codes to issue: sent back with a message.
    "mfa:recovery_codes": Rule(ALL, any_signed_in=True, method="post", ok_status=frozenset({302})),
    # Someone else's second factors (and their reset): Admins.
    "mfa:person": Rule(frozenset({Role.ADMIN}), kwargs={"pk": 999999}, ok_status=frozenset({404})),
    "changes:list": Rule(frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN})),
    "audit:list": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
    # Detail pages of records that do not exist: who may look gets 404, others 403.
    "audit:detail": Rule(
        frozenset({Role.AUDITOR, Role.ADMIN}), kwargs={"seq": 999999}, ok_status=frozenset({404})
    ),
    "audit:export": Rule(frozenset({Role.AUDITOR, Role.ADMIN}), method="post"),
    # Integrity: Auditors and Admins check the chain; only Admins sign a checkpoint on demand.
    "audit:integrity": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
    "audit:integrity_verify": Rule(
        frozenset({Role.AUDITOR, Role.ADMIN}), method="post", ok_status=frozenset({303})
    ),
    "audit:checkpoint_issue": Rule(
        frozenset({Role.ADMIN}), method="post", ok_status=frozenset({303})
    ),
    # Erasing personal data from the trail: Admins only (an empty form is refused).
    "audit:erasure": Rule(frozenset({Role.ADMIN})),
    "audit:erasure_confirm": Rule(
        frozenset({Role.ADMIN}), method="post", ok_status=frozenset({400})
    ),
    "changes:detail": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN}),
        kwargs={"pk": 999999},
        ok_status=frozenset({404}),
    ),
    "changes:policy": Rule(frozenset({Role.ADMIN})),
    # Each person's email choices: whoever works with change requests; the webhook's
    # delivery log: Admins.
    "notifications:preferences": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN})
    ),
    "notifications:deliveries": Rule(frozenset({Role.ADMIN})),
    "changes:act": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER, Role.ADMIN}),
        kwargs={"pk": 999999},
        method="post",
        ok_status=frozenset({404}),
    ),
    "catalogs:list": Rule(ALL),
    # Catalog mirror (rows made by _catalog_rows): everyone browses; a refresh is a read.
    "catalogs:list_refresh": Rule(ALL, method="post", ok_status=frozenset({302})),
    "catalogs:detail": Rule(ALL, kwargs={"name": "matrix"}),
    "catalogs:refresh": Rule(
        ALL, kwargs={"name": "matrix"}, method="post", ok_status=frozenset({302})
    ),
    "catalogs:items": Rule(ALL, kwargs={"name": "matrix"}),
    "catalogs:item_export": Rule(ALL, kwargs={"name": "matrix"}),
    "catalogs:item_detail": Rule(ALL, kwargs={"name": "matrix", "item_id": "item-1"}),
    # Proposing catalog and item changes: Editors only.
    "catalogs:create": Rule(frozenset({Role.EDITOR})),
    "catalogs:delete": Rule(frozenset({Role.EDITOR}), kwargs={"name": "matrix"}),
    "catalogs:item_create": Rule(frozenset({Role.EDITOR}), kwargs={"name": "matrix"}),
    "catalogs:field_add": Rule(frozenset({Role.EDITOR}), kwargs={"name": "matrix"}),
    "catalogs:field_delete": Rule(
        frozenset({Role.EDITOR}), kwargs={"name": "matrix", "field_name": "price"}
    ),
    "catalogs:selection_create": Rule(frozenset({Role.EDITOR}), kwargs={"name": "matrix"}),
    "catalogs:selection_delete": Rule(
        frozenset({Role.EDITOR}), kwargs={"name": "matrix", "selection_name": "cheap"}
    ),
    "catalogs:item_edit": Rule(
        frozenset({Role.EDITOR}), kwargs={"name": "matrix", "item_id": "item-1"}
    ),
    "catalogs:item_delete": Rule(
        frozenset({Role.EDITOR}), kwargs={"name": "matrix", "item_id": "item-1"}
    ),
    # Bulk item jobs: Editors upload and submit; everyone follows a job and its reports;
    # Editors and Reviewers pause, resume or cancel one.
    "catalog_bulk:upload": Rule(frozenset({Role.EDITOR}), kwargs={"name": "matrix"}),
    "catalog_bulk:jobs": Rule(ALL, kwargs={"name": "matrix"}),
    # Copying items to another workspace: with one workspace there is none to copy to, so
    # everyone is refused (tests/catalog_bulk/test_copy.py: with two, PROPOSE in the target).
    "catalog_bulk:copy": Rule(NOBODY, kwargs={"name": "matrix"}, method="post"),
    **{
        f"catalog_bulk:{name}": Rule(
            ALL, kwargs={"name": "matrix", "job_id": 999999}, ok_status=frozenset({404})
        )
        for name in ("job", "errors", "report")
    },
    "catalog_bulk:propose": Rule(
        frozenset({Role.EDITOR}),
        kwargs={"name": "matrix", "job_id": 999999},
        method="post",
        ok_status=frozenset({404}),
    ),
    "catalog_bulk:control": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER}),
        kwargs={"name": "matrix", "job_id": 999999},
        method="post",
        ok_status=frozenset({404}),
    ),
    "templates_app:email_templates": Rule(ALL),
    "templates_app:content_blocks": Rule(ALL),
    "templates_app:preference_centers": Rule(ALL),
    # Content screens read Braze: an id Braze does not know is a 404, Braze unreachable a 502.
    **{
        f"templates_app:{name}": Rule(ALL, kwargs={key: "no-such-id"}, ok_status=_BRAZE_READ)
        for name, key in (
            ("email_template_detail", "email_template_id"),
            ("content_block_detail", "content_block_id"),
            ("preference_center_detail", "preference_center_id"),
        )
    },
    **{
        f"templates_app:{name}": Rule(
            frozenset({Role.EDITOR}), kwargs=cast(dict[str, object], kwargs), ok_status=_BRAZE_READ
        )
        for name, kwargs in (
            ("email_template_create", {}),
            ("content_block_create", {}),
            ("preference_center_create", {}),
            ("email_template_edit", {"email_template_id": "no-such-id"}),
            ("content_block_edit", {"content_block_id": "no-such-id"}),
            ("preference_center_edit", {"preference_center_id": "no-such-id"}),
        )
    },
    "templates_app:preference_center_user_url": Rule(
        frozenset({Role.EDITOR}),
        kwargs={"preference_center_id": "no-such-id"},
        method="post",
        ok_status=frozenset({400, 404, 502}),
    ),
    "templates_app:search": Rule(ALL),
    "templates_app:history": Rule(
        ALL, kwargs={"resource_type": "content_block", "braze_id": "no-such-id"}
    ),
    "templates_app:version_diff": Rule(
        ALL,
        kwargs={"resource_type": "content_block", "braze_id": "no-such-id"},
        ok_status=frozenset({404}),
    ),
    "templates_app:version_restore": Rule(
        frozenset({Role.EDITOR}),
        kwargs={"resource_type": "content_block", "braze_id": "no-such-id", "version": 1},
        method="post",
        ok_status=frozenset({404}),
    ),
    "templates_app:preview": Rule(ALL, kwargs={"token": "expired"}, ok_status=frozenset({404})),
    "templates_app:preview_live": Rule(frozenset({Role.EDITOR}), method="post"),
    "templates_app:preview_as": Rule(frozenset({Role.EDITOR}), method="post"),
    "templates_app:preview_as_item": Rule(
        ALL,
        kwargs={"resource_type": "content_block", "braze_id": "no-such-id"},
        ok_status=_BRAZE_READ,
    ),
    # A Braze user's data: only the people who write and check content (docs/preview.md).
    "templates_app:preview_as_braze_user": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER}),
        kwargs={"resource_type": "content_block", "braze_id": "no-such-id"},
        method="post",
        ok_status=_BRAZE_READ,
    ),
    "templates_app:change_preview_braze_user": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER}),
        kwargs={"pk": 999999},
        method="post",
        ok_status=frozenset({404}),
    ),
    "templates_app:preview_profiles": Rule(ALL),
    "templates_app:preview_settings": Rule(frozenset({Role.EDITOR})),
    "templates_app:preview_profile_create": Rule(frozenset({Role.EDITOR})),
    "templates_app:preview_profile_edit": Rule(
        frozenset({Role.EDITOR}), kwargs={"pk": 999999}, ok_status=frozenset({404})
    ),
    "templates_app:preview_profile_delete": Rule(
        frozenset({Role.EDITOR}), kwargs={"pk": 999999}, method="post", ok_status=frozenset({404})
    ),
    "templates_app:change_preview": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN}),
        kwargs={"pk": 999999},
        ok_status=frozenset({404}),
    ),
    # Content as files (bundles/): everyone who reads content exports it; Editors import.
    "bundles:files": Rule(ALL),
    "bundles:export": Rule(ALL, ok_status=frozenset({200, 502})),
    "bundles:import": Rule(frozenset({Role.EDITOR}), method="post", ok_status=frozenset({400})),
    # Promotion: whoever may propose, here (and, to promote, in the target: tests/bundles).
    # It reads the workspace's names from Braze, which the matrix does not serve.
    "bundles:promote": Rule(frozenset({Role.EDITOR}), ok_status=frozenset({200, 502})),
    "bundles:review": Rule(
        frozenset({Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN}),
        kwargs={"pk": 999999},
        ok_status=frozenset({404}),
    ),
    "users_admin:index": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
    # Console users: Admins only.
    "users_admin:console_users": Rule(frozenset({Role.ADMIN})),
    "users_admin:user_create": Rule(frozenset({Role.ADMIN})),
    # A person's roles in the URL's workspace (GET the form, POST a proposal): Admins there.
    "users_admin:user_workspace_roles": Rule(
        frozenset({Role.ADMIN}), kwargs={"pk": 999999}, ok_status=frozenset({404})
    ),
    "users_admin:user_detail": Rule(
        frozenset({Role.ADMIN}), kwargs={"pk": 999999}, ok_status=frozenset({404})
    ),
    # The invited person's one-time link: public (no session yet); a bad token shows a page.
    "users_admin:set_password": Rule(
        ALL, public=True, any_signed_in=True, kwargs={"uidb64": "MQ", "token": "expired"}
    ),
    # Dashboard users hold staff names, emails and Braze permissions: Admins and Auditors
    # read them, only Admins propose changes. The matrix runs without a SCIM token, so
    # screens that must read the account first answer 502 with the reason in words.
    "users_admin:dashboard_users": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
    "users_admin:dashboard_user_detail": Rule(
        frozenset({Role.AUDITOR, Role.ADMIN}),
        kwargs={"user_id": "no-such-id"},
        ok_status=frozenset({502}),
    ),
    "users_admin:dashboard_user_create": Rule(frozenset({Role.ADMIN})),
    **{
        f"users_admin:{name}": Rule(
            frozenset({Role.ADMIN}), kwargs={"user_id": "no-such-id"}, ok_status=frozenset({502})
        )
        for name in ("dashboard_user_edit", "dashboard_user_remove")
    },
    # The access review and its (audited) export: Auditors and Admins.
    "users_admin:access_review": Rule(frozenset({Role.AUDITOR, Role.ADMIN})),
    # Without a look-up to export, the allowed are sent back to the review with a message.
    "users_admin:access_review_export": Rule(
        frozenset({Role.AUDITOR, Role.ADMIN}), method="post", ok_status=frozenset({302})
    ),
}


@pytest.fixture(autouse=True)
def _metrics_token(settings: Settings) -> None:
    settings.METRICS_TOKEN = "matrix-metrics-token"


@pytest.fixture(autouse=True)
def _catalog_rows(request: pytest.FixtureRequest) -> None:
    """A mirrored catalog and item for the catalog URLs that name one."""
    if "db" not in request.fixturenames and "client_for" not in request.fixturenames:
        return
    request.getfixturevalue("db")
    from catalogs.models import CatalogSelection
    from tests.factories import CatalogFactory, catalog_item_create

    catalog = cast(Catalog, CatalogFactory(name="matrix"))
    catalog_item_create(catalog, "item-1", name="Matrix item", price=1)
    CatalogSelection.objects.create(catalog=catalog, name="cheap", definition={"filters": []})


def _url_names(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            namespace = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
            yield from _url_names(pattern.url_patterns, namespace)
        elif pattern.name:
            yield f"{prefix}{pattern.name}"


def test_every_url_is_in_the_matrix() -> None:
    names = set(_url_names(get_resolver().url_patterns))
    assert names - MATRIX.keys() == set(), "add these URL names to MATRIX"
    assert MATRIX.keys() - names == set(), "these MATRIX entries no longer exist"


def _request(client: Client, name: str, rule: Rule):
    url = reverse(name, kwargs=rule.kwargs or None)
    return getattr(client, rule.method)(url)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_anonymous_users_are_sent_to_sign_in(db: None, name: str) -> None:
    rule = MATRIX[name]
    response = _request(Client(), name, rule)
    if rule.bearer:
        assert response.status_code in rule.ok_status
    elif rule.public:
        assert response.status_code in {200, 302, 503}
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", [*Role, None], ids=[*(r.value for r in Role), "no-role"])
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_role_gets_exactly_what_the_matrix_allows(
    client_for: Callable[[Role | None], Client], name: str, role: Role | None
) -> None:
    rule = MATRIX[name]
    response = _request(client_for(role), name, rule)
    if name == "login":
        # Signed-in users are sent on from the login page.
        assert response.status_code == 302
        return
    allowed = rule.any_signed_in or (role is not None and role in rule.allowed)
    expected = rule.ok_status if allowed else {403}
    assert response.status_code in expected, f"{role} on {name}"


# --- roles scoped to a workspace ---------------------------------------------------------------

_TWO_WORKSPACES = {
    "BRAZE_WORKSPACES": "staging,production",
    "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
    "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
    "BRAZE_PRODUCTION_PRODUCTION": "1",
}


@pytest.fixture
def production_only(settings: Settings, db: None) -> Callable[[Role], Client]:
    """A signed-in client for someone who holds `role` in production and no role elsewhere,
    with production's own copy of the matrix catalog."""
    from catalogs.models import CatalogSelection
    from console.roles import user_workspace_roles_assign
    from console.workspaces import workspaces_from_env
    from tests.factories import CatalogFactory, catalog_item_create, user_with_role

    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(_TWO_WORKSPACES)
    catalog = cast(Catalog, CatalogFactory(name="matrix", workspace="production"))
    catalog_item_create(catalog, "item-1", name="Matrix item", price=1)
    CatalogSelection.objects.create(catalog=catalog, name="cheap", definition={"filters": []})

    def make(role: Role) -> Client:
        person = user_with_role(None)
        user_workspace_roles_assign(user=person, workspace="production", roles=[role])
        client = Client()
        client.force_login(person)
        return client

    return make


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_a_role_held_in_one_workspace_gets_exactly_the_matrix_there(
    production_only: Callable[[Role], Client], name: str, role: Role
) -> None:
    from console.workspace_urls import workspace_reverse

    rule = MATRIX[name]
    client = production_only(role)
    url = workspace_reverse(name, workspace="production", kwargs=rule.kwargs or None)
    response = getattr(client, rule.method)(url)
    if name == "login":
        assert response.status_code == 302
        return
    allowed = rule.any_signed_in or role in rule.allowed
    expected = rule.ok_status if allowed else {403}
    assert response.status_code in expected, f"{role} in production on {name}"


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_a_role_held_in_one_workspace_grants_nothing_in_another(
    production_only: Callable[[Role], Client], role: Role
) -> None:
    from console.workspace_urls import workspace_reverse

    client = production_only(role)
    for name in ("catalogs:list", "changes:list", "audit:list", "users_admin:index"):
        assert client.get(workspace_reverse(name, workspace="staging")).status_code == 403, name
