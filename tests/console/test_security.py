import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import HttpResponseBase
from django.test import Client
from django.urls import reverse

from console.roles import Role
from tests.factories import user_with_role

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_every_page_carries_a_csp_whose_script_nonce_matches_the_script_tags() -> None:
    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    response = client.get(reverse("home"))
    csp = response["Content-Security-Policy"]
    match = re.search(r"'nonce-([^']+)'", csp)
    assert match, csp
    assert "script-src 'self' 'nonce-" in csp
    assert "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    scripts = re.findall(r"<script[^>]*>", response.content.decode())
    assert scripts, "htmx should be loaded"
    assert all(f'nonce="{match.group(1)}"' in tag for tag in scripts)
    assert all("http" not in tag for tag in scripts), "no script from another origin"


def _cache_directives(response: HttpResponseBase) -> set[str]:
    return {d.strip() for d in response.get("Cache-Control", "").split(",") if d.strip()}


@pytest.mark.django_db
def test_no_response_may_be_kept_by_a_browser_or_a_shared_cache() -> None:
    """Staff emails, dashboard users' permissions and the audit trail must not stay on the disk
    of a shared computer or in a proxy after signing out: pages, exports, redirects and
    refusals all say no-store, private."""
    from users_admin.services import dashboard_user_propose_create

    admin, viewer = Client(), Client()
    admin.force_login(user_with_role(Role.ADMIN))
    viewer.force_login(user_with_role(Role.VIEWER))
    request = dashboard_user_propose_create(
        actor=user_with_role(Role.ADMIN),
        email="staff@example.com",
        given_name="Staff",
        family_name="Member",
        department="",
        permissions={"companyPermissions": []},
    )
    responses = {
        "console users": admin.get(reverse("users_admin:console_users")),
        "dashboard users": admin.get(reverse("users_admin:dashboard_users")),
        "a change request about a dashboard user": admin.get(request.get_absolute_url()),
        "audit log": admin.get(reverse("audit:list")),
        "audit export": admin.post(reverse("audit:export")),
        "access review": admin.get(reverse("users_admin:access_review")),
        "a list fragment": admin.get(
            reverse("audit:list"), headers={"HX-Request": "true", "HX-Target": "results"}
        ),
        "a refusal": viewer.get(reverse("audit:list")),
        "the way to sign in": Client().get(reverse("audit:list")),
    }
    for what, response in responses.items():
        assert {"no-store", "private"} <= _cache_directives(response), what


@pytest.mark.django_db
def test_htmx_keeps_no_copy_of_a_page_in_the_browser() -> None:
    """htmx's history snapshots (whole pages, in sessionStorage) would keep personal data
    after signing out; Back asks the server again, for the whole page."""
    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    body = client.get(reverse("home")).content.decode()
    match = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", body)
    assert match, "the htmx config is missing"
    config = json.loads(match.group(1))
    assert config["historyCacheSize"] == 0
    assert config["historyRestoreAsHxRequest"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["password_change", "password_change_done"])
def test_a_signed_out_htmx_request_loads_the_login_page_whole(name: str) -> None:
    response = Client().get(reverse(name), headers={"HX-Request": "true"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert response["HX-Redirect"] == response["Location"]


@pytest.mark.django_db
def test_the_404_page_is_styled_and_leaks_nothing() -> None:
    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    response = client.get("/no/such/page/?secret=1")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert "console.css" in body
    for leak in ("Traceback", "urlpatterns", "secret"):
        assert leak not in body


@pytest.mark.django_db
def test_the_403_page_explains_in_words_and_leaks_nothing() -> None:
    client = Client()
    client.force_login(user_with_role(Role.VIEWER))
    response = client.get(reverse("audit:list"))
    assert response.status_code == 403
    assert b"Your role does not allow this" in response.content
    assert b"PermissionDenied" not in response.content


def test_the_500_page_renders_without_a_request_context() -> None:
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in html


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "TESTING", "HTTPS", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env |= {
        "DEBUG": "0",
        "SECRET_KEY": "p" * 20 + "roduction-secret-" + os.urandom(16).hex(),
        "AUDIT_CHAIN_KEY": os.urandom(32).hex(),
        "ALLOWED_HOSTS": "console.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "TESTING", "SECRET_KEY"}}
    env |= {"DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_development_database_is_private_and_trusts_no_one() -> None:
    """scripts/lib.sh: no other local user may reach the socket, and logging in takes being
    the OS user who runs the scripts (peer), not merely naming a role (trust)."""
    import stat

    import psycopg

    socket_dir, superuser_url = os.environ.get("TEST_TMPDIR"), os.environ.get("PG_SUPERUSER_URL")
    if not (socket_dir and superuser_url):
        pytest.skip("run through scripts/test")
    assert stat.S_IMODE(os.stat(socket_dir).st_mode) == 0o700
    with psycopg.connect(superuser_url) as conn:
        rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
        socket_mode = conn.execute("SHOW unix_socket_permissions").fetchone()
    assert rules == [("local", "peer")]
    assert socket_mode == ("0700",)
