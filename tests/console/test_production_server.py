"""The production web tier: `make serve` (gunicorn, WhiteNoise) with production settings, and
the process files that start it and the workers (docs/deploy.md).

The smoke test runs what an operator runs at a release (collectstatic, then `make serve` and a
Celery worker) against the suite's database, Redis and Braze sandbox, and goes through it as
people do: an Editor signs in, browses and proposes; a Reviewer approves; the worker applies.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.hashers import make_password
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.celery import QUEUES
from console.changes.models import ChangeRequest, ChangeState
from console.services import demo_password, demo_users_create
from tests.factories import totp_code_unused
from tests.fixtures.sandbox import SandboxHandle, free_port
from tests.fixtures.workers import StartWorker, worker_environment

ROOT = Path(__file__).resolve().parents[2]


def _procfile(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and line[0] != "#")


def _make_recipe(target: str) -> str:
    """The command `make <target>` runs (without running it)."""
    result = subprocess.run(
        ["make", "-s", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _queues_of(command: str) -> set[str]:
    args = shlex.split(command)
    return set(args[args.index("-Q") + 1].split(","))


# --- The process files -------------------------------------------------------------------


def test_make_serve_runs_gunicorn_as_the_web_kind_as_procfile_production_does() -> None:
    serve = _make_recipe("serve")
    assert serve == _procfile("Procfile.production")["web"]
    assert serve.startswith(".venv/bin/python -m console.processes web .venv/bin/gunicorn ")
    assert "-c console/gunicorn_config.py console.wsgi" in serve


def test_production_runs_one_worker_per_queue_group_and_every_queue_has_one() -> None:
    procs = _procfile("Procfile.production")
    workers = {name: command for name, command in procs.items() if name.startswith("worker-")}
    for name, command in procs.items():
        kind = name.split("-", 1)[0]
        assert command.startswith(f".venv/bin/python -m console.processes {kind} "), name
    consumed = [_queues_of(command) for command in workers.values()]
    assert set().union(*consumed) == set(QUEUES)
    # The interactive queue has a worker of its own: no bulk job or sync can occupy it.
    assert {"interactive"} in consumed
    # The development server and the sandbox are not production processes.
    assert "runserver" not in " ".join(procs.values())
    assert "sandbox" not in procs


def test_the_development_worker_consumes_every_queue() -> None:
    assert _queues_of(_procfile("Procfile")["worker"]) == set(QUEUES)


def test_the_gunicorn_settings_are_threaded_with_timeouts_and_recycling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("GUNICORN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = runpy.run_path(str(ROOT / "console/gunicorn_config.py"))
    assert config["bind"] == ["127.0.0.1:8123"]
    assert (config["worker_class"], config["workers"]) == ("gthread", 3)
    assert config["timeout"] == 60
    assert config["graceful_timeout"] == 30
    assert config["max_requests"] == 1000
    assert config["max_requests_jitter"] == 100
    assert config["control_socket_disable"] is True


# --- The smoke test ------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """The name and value of every field of the page's forms, as a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "input" and name and a.get("type") not in {"submit", "button", "checkbox"}:
            self.fields[name] = a.get("value", "")
        elif tag == "input" and name and "checked" in a:
            self.fields[name] = a.get("value", "on")
        elif tag == "textarea" and name:
            self._textarea, self.fields[name] = name, ""
        elif tag == "select" and name:
            self._select = name
        elif (
            tag == "option"
            and self._select
            and ("selected" in a or self._select not in self.fields)
        ):
            self.fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data


def _form(page: httpx.Response) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(page.text)
    return parser.fields


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.25)


@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"prod-{uuid.uuid4().hex}",
    }
    close_client()
    yield braze_sandbox
    close_client()


@pytest.fixture
def production_env(braze: SandboxHandle, settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Production settings over the suite's database, Redis and sandbox (plain HTTP on loopback:
    the reverse proxy that would terminate TLS is not part of the test)."""
    env = worker_environment(braze=braze, settings=settings)
    env.pop("TESTING", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env |= {
        "DEBUG": "0",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        # The same chain key as this process, so entries both write verify as one trail.
        "AUDIT_CHAIN_KEY": settings.AUDIT_CHAIN_KEY,
        "AUDIT_CHECKPOINT_DIR": str(settings.AUDIT_CHECKPOINT_DIR),
        "STATIC_ROOT": str(tmp_path / "static"),
        "HEALTHZ_CACHE_SECONDS": "0",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "GUNICORN_ACCESS_LOG": "-",
    }
    return env


@pytest.fixture
def serve(production_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """collectstatic, then `make serve` on a free loopback port; yields its base URL."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=production_env,
        check=True,
        timeout=120,
    )
    port = free_port()
    with (tmp_path / "gunicorn.log").open("ab") as log:
        proc = subprocess.Popen(
            ["make", "-s", "serve"],
            cwd=ROOT,
            env=production_env | {"PORT": str(port)},
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
        try:
            httpx.get(f"{base}/healthz", timeout=2)
        except httpx.TransportError:
            return False
        return True

    try:
        _wait_for(answering, "gunicorn answers", timeout=60)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    response = client.post(
        "/accounts/login/",
        data={**_form(page), "username": username, "password": demo_password(username)},
    )
    assert response.status_code == 302, response.text[:2000]
    if response.headers["Location"].startswith(reverse("mfa:verify")):
        # Reviewers and Admins pass the second factor: demo users have an authenticator app.
        device = TOTPDevice.objects.get(user__username=username, confirmed=True)
        page = client.get(response.headers["Location"])
        answered = client.post(
            page.url.path, data={**_form(page), "code": totp_code_unused(device)}
        )
        assert answered.status_code == 302, answered.text[:2000]
    assert client.get("/").status_code == 200
    return client


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_production_server_takes_a_change_from_sign_in_to_braze(
    serve: str,
    production_env: dict[str, str],
    start_celery_worker: StartWorker,
    braze: SandboxHandle,
    settings: Settings,
) -> None:
    from catalogs.models import Catalog
    from catalogs.services import catalog_item_mirror_write, catalog_mirror_refresh

    start_celery_worker(production_env, "smoke")
    # Production hashes passwords with PBKDF2; the suite's fast MD5 is not among its hashers.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    demo_users_create()
    assert make_password("x").startswith("pbkdf2_sha256$")
    catalog_mirror_refresh(client=get_client())
    tiers = Catalog.objects.get(name="loyalty_tiers")
    silver = get_client().catalog_item_get(catalog_name="loyalty_tiers", item_id="silver")
    catalog_item_mirror_write(
        catalog=tiers,
        item_id="silver",
        action="create",
        values={k: v for k, v in silver.items() if k != "id"},
    )

    # An Editor signs in, browses the catalogs and proposes an edit.
    editor = _signed_in(serve, "editor")
    catalogs = editor.get("/catalogs/")
    assert catalogs.status_code == 200
    assert "loyalty_tiers" in catalogs.text
    items = editor.get("/catalogs/loyalty_tiers/items/")
    assert items.status_code == 200
    assert "silver" in items.text
    edit = editor.get("/catalogs/loyalty_tiers/items/silver/edit/")
    assert edit.status_code == 200
    proposed = editor.post(edit.url.path, data={**_form(edit), "v_min_points": "1234"})
    assert proposed.status_code == 302, proposed.text[:2000]
    cr = ChangeRequest.objects.get()
    assert (cr.state, cr.author.username, cr.payload) == (
        ChangeState.PENDING,
        "editor",
        {"min_points": 1234},
    )

    # A Reviewer approves it; the worker applies it from the interactive queue.
    reviewer = _signed_in(serve, "reviewer")
    detail = reviewer.get(f"/changes/{cr.pk}/")
    assert detail.status_code == 200
    approved = reviewer.post(
        f"/changes/{cr.pk}/act",
        data={"csrfmiddlewaretoken": _form(detail)["csrfmiddlewaretoken"], "op": "approve"},
    )
    assert approved.status_code == 302, approved.text[:2000]

    def applied() -> bool:
        cr.refresh_from_db()
        assert cr.state not in {ChangeState.FAILED, ChangeState.CONFLICT}, cr.state
        return cr.state == ChangeState.APPLIED

    _wait_for(applied, "the change is applied")
    item = get_client().catalog_item_get(catalog_name="loyalty_tiers", item_id="silver")
    assert item["min_points"] == 1234
    assert re.search(r"data-state[^>]*>\s*Applied", reviewer.get(f"/changes/{cr.pk}/").text)

    # The health check sees every dependency, the worker included.
    health = httpx.get(f"{serve}/healthz", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})

    # Static files: collected with hashed names, linked by the pages, served by WhiteNoise.
    manifest = json.loads((Path(production_env["STATIC_ROOT"]) / "staticfiles.json").read_text())
    hashed = manifest["paths"]["console/console.css"]
    assert hashed != "console/console.css"
    assert f"/static/{hashed}" in reviewer.get("/").text
    css = httpx.get(f"{serve}/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]  # the name changes when the file does
    # DEBUG is off: no technical 404 page.
    missing = httpx.get(f"{serve}/no-such-page/")
    assert missing.status_code == 404
    assert "URLconf" not in missing.text
