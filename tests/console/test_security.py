import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
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
