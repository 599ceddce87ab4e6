"""The canary guard (tests/fixtures/canary.py): the suite really runs with the canary secrets,
and a leak through each watched channel is caught. A guard that cannot fail would be a defect."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import Client, override_settings
from django.urls import path
from kombu import Queue
from pytest_django.fixtures import Settings

from console.braze import close_client, get_client
from console.celery import app as celery_app
from tests.fixtures.canary import (
    CANARIES,
    NEEDLES,
    Leak,
    expect_canary_leak,
    find_canary,
    scan_files,
)
from tests.fixtures.sandbox import SandboxHandle

ROOT = Path(__file__).resolve().parents[1]
KEY = CANARIES.api_key
TOKEN = CANARIES.scim_token


# --- the suite uses the canary ---------------------------------------------------------------


def test_the_suite_runs_with_fresh_canary_secrets(settings: Settings) -> None:
    assert settings.BRAZE_API_KEY == KEY
    assert KEY.startswith("brz-canary-")
    assert len(KEY) >= len("brz-canary-") + 16
    assert settings.BRAZE_SCIM_TOKEN == TOKEN
    assert TOKEN.startswith("brz-canary-scim-")
    # Worker subprocesses and management commands read the environment.
    assert os.environ["BRAZE_API_KEY"] == KEY
    assert os.environ["BRAZE_SCIM_TOKEN"] == TOKEN


@pytest.fixture
def console_on_sandbox(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_SCIM_TOKEN = braze_sandbox.scim_token
    settings.BRAZE_SCIM_ORIGIN = braze_sandbox.scim_origin
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "workspace": uuid.uuid4().hex}
    close_client()
    yield braze_sandbox
    close_client()


def test_the_console_reaches_the_sandbox_with_the_canary_key_and_token(
    console_on_sandbox: SandboxHandle,
) -> None:
    assert console_on_sandbox.api_key == KEY
    assert console_on_sandbox.scim_token == TOKEN
    assert get_client().catalog_list()
    assert get_client().scim_user_search(email="nobody@example.com") is None
    log = console_on_sandbox.admin.log()
    # The sandbox names the credentials it was started with (--api-key/--scim-token).
    assert [(e["path"].split("?")[0], e["key"], e["status"]) for e in log] == [
        ("/catalogs", "cli-key-1", 200),
        ("/scim/v2/Users", "cli-scim-1", 200),
    ]


def test_a_failing_test_shows_the_sandbox_fixture_without_its_secrets(
    braze_sandbox: SandboxHandle,
) -> None:
    # pytest prints fixture values in failure reports (which the guard also reads).
    assert find_canary(repr(braze_sandbox)) is None
    assert "port=" in repr(braze_sandbox)


# --- needles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"", b"B", b"Be", b"Bearer "])
def test_it_finds_the_key_base64_encoded_at_any_offset(prefix: bytes) -> None:
    for secret in (KEY, TOKEN):
        encoded = base64.b64encode(prefix + secret.encode() + b" and more")
        assert find_canary(encoded.decode()) is not None
        assert find_canary(base64.urlsafe_b64encode(prefix + secret.encode())) is not None
    assert find_canary(KEY.encode().hex()) == "API key (hex)"
    assert find_canary(f"x{TOKEN}y") == "SCIM token"


def test_it_does_not_mistake_other_keys_for_the_canary() -> None:
    assert find_canary("brz-canary-0123456789abcdef0123456789abcdef") is None
    assert find_canary(KEY[:-1]) is None
    assert find_canary(base64.b64encode(KEY[:-2].encode()).decode()) is None
    assert all(len(needle) >= 40 for needle, _ in NEEDLES)


# --- logs and captured output ----------------------------------------------------------------


@pytest.fixture
def unmasked_logs() -> Iterator[None]:
    """The console's log handler masks the configured secrets (console/logs.py); without it,
    these tests show the guard still catches a leak that something else lets through."""
    from console.logs import RedactSecretsFilter

    removed = []
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, RedactSecretsFilter)]:
            handler.removeFilter(found)
            removed.append((handler, found))
    yield
    for handler, found in removed:
        handler.addFilter(found)


@pytest.mark.usefixtures("unmasked_logs")
def test_a_debug_record_of_a_project_logger_is_caught() -> None:
    with expect_canary_leak("logs") as caught:
        logging.getLogger("console.braze.client").debug("sending with %s", KEY)
    assert "logger 'console.braze.client'" in caught[0].where


@pytest.mark.usefixtures("unmasked_logs")
def test_a_secret_in_a_logged_traceback_or_extra_field_is_caught() -> None:
    logger = logging.getLogger("catalogs.services")
    with expect_canary_leak("logs"):
        try:
            raise RuntimeError(base64.b64encode(f"Bearer {TOKEN}".encode()).decode())
        except RuntimeError:
            logger.exception("the request failed")
    with expect_canary_leak("logs"):
        logger.warning("retrying", extra={"headers": {"Authorization": f"Bearer {KEY}"}})


def test_a_logger_that_does_not_propagate_is_watched_too() -> None:
    logger = logging.getLogger(f"third.party.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    with expect_canary_leak("logs"):
        logger.error("key=%s", KEY)


def test_output_the_test_reads_through_capsys_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    print(f"api_key={KEY}")
    with expect_canary_leak("captured output"):
        capsys.readouterr()


INNER_TESTS = """
import os, sys, subprocess

def test_prints_the_key():
    print("key:", os.environ["BRAZE_API_KEY"])

def test_a_subprocess_writes_the_token_to_stderr():
    subprocess.run([sys.executable, "-c",
                    "import os, sys; sys.stderr.write(os.environ['BRAZE_SCIM_TOKEN'])"])

def test_says_nothing_secret():
    print("nothing to see")

def test_saves_a_report_holding_the_key(tmp_path):
    (tmp_path / "report.csv").write_text("id,note,1," + os.environ["BRAZE_API_KEY"])
"""


@pytest.mark.slow
def test_a_passing_test_that_prints_the_key_is_turned_into_a_failure(tmp_path: Path) -> None:
    """End to end through pytest's own reports, in a separate pytest run with only the plugin."""
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.fixtures.canary",
            "-p",
            "no:cacheprovider",
            "--show-capture=no",
            "-q",
            "--rootdir",
            str(tmp_path),
            "-c",
            str(ROOT / "pyproject.toml"),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # A file is scanned after the test, so pytest reports it as an error at teardown.
    assert "2 failed, 2 passed, 1 error" in out, out
    assert "canary API key appeared in captured output: captured stdout call" in out, out
    assert "canary SCIM token appeared in captured output: captured stderr call" in out, out
    assert "canary API key appeared in a file: file report.csv" in out, out
    assert find_canary(out) is None  # the report names the leak without repeating the secret


# --- files -----------------------------------------------------------------------------------


def test_a_file_holding_a_secret_across_a_read_boundary_is_caught(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Not the test's own tmp_path: that one is scanned after the test, which would fail it.
    root = tmp_path_factory.mktemp("canary-files")
    half = len(KEY) // 2
    (root / "reports").mkdir()
    (root / "reports" / "job-7.csv").write_bytes(b"x" * ((1 << 20) - half) + KEY.encode() + b"\n")
    with expect_canary_leak("a file") as caught:
        scan_files(root)
    assert [leak.where for leak in caught] == ["file reports/job-7.csv"]


def test_the_sandbox_store_may_hold_the_key_it_accepts(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("canary-sandbox")
    (root / "sandbox.sqlite3").write_text(KEY)
    (root / "sandbox.sqlite3-wal").write_text(KEY)
    (root / "notes.txt").write_text("nothing secret")
    scan_files(root)  # no leak recorded: a stray one would fail this test at its report


# --- pages -----------------------------------------------------------------------------------


def _page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<p>Your key is {KEY}</p>")


def _header(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("nothing here")
    response["X-Debug"] = base64.b64encode(f"token:{TOKEN}".encode()).decode()
    return response


def _split_stream(request: HttpRequest) -> StreamingHttpResponse:
    half = len(KEY) // 2
    rows = [b"id,note\n", b"1,plain\n", f"2,{KEY[:half]}".encode(), f"{KEY[half:]}\n".encode()]
    return StreamingHttpResponse(iter(rows), content_type="text/csv")


def _clean_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"id,note\n", KEY[:20].encode(), b"\n", KEY[20:].encode()]))


urlpatterns = [
    path("page/", _page),
    path("header/", _header),
    path("split-stream/", _split_stream),
    path("clean-stream/", _clean_stream),
]


def _streamed(response: Any) -> bytes:
    return b"".join(cast(StreamingHttpResponse, response).streaming_content)  # type: ignore[arg-type]


@pytest.mark.urls(__name__)
def test_a_page_or_header_holding_a_secret_is_caught(db: None) -> None:
    with expect_canary_leak("page") as caught:
        Client().get("/page/?q=1")
    assert caught[0].where == "GET /page/?q=1 → 200"
    with expect_canary_leak("page") as caught:
        Client().get("/header/")
    assert caught[0].where.endswith("(headers)")
    assert caught[0].form == "SCIM token (base64)"


@pytest.mark.urls(__name__)
def test_a_secret_split_across_two_chunks_of_a_stream_is_caught(db: None) -> None:
    response = Client().get("/split-stream/")
    with expect_canary_leak("page") as caught:
        _streamed(response)
    assert caught[0].where == "GET /split-stream/ → 200 (streamed)"


@pytest.mark.urls(__name__)
def test_a_stream_with_pieces_of_the_key_apart_is_not_a_leak(db: None) -> None:
    # A newline between the halves: the key itself never appears, and the guard must not
    # fail this test by gluing the chunks' tails together wrongly.
    body = _streamed(Client().get("/clean-stream/"))
    assert body == f"id,note\n{KEY[:20]}\n{KEY[20:]}".encode()


@pytest.mark.django_db(transaction=True)
def test_the_live_server_is_watched(live_server: Any) -> None:
    with override_settings(ROOT_URLCONF=__name__), expect_canary_leak("page"):
        httpx.get(live_server.url + "/page/", timeout=10)


# --- e-mail ----------------------------------------------------------------------------------


def test_an_email_holding_a_secret_is_caught() -> None:
    with expect_canary_leak("e-mail"):
        mail.send_mail("Your review", f"key {KEY}", "console@example.com", ["r@example.com"])
    assert len(mail.outbox) == 1


def test_a_cache_entry_holding_a_secret_is_caught() -> None:
    from django.core.cache import cache

    key = f"canary-guard-{uuid.uuid4().hex}"
    with expect_canary_leak("cache") as caught:
        cache.set(key, {"headers": {"Authorization": f"Bearer {KEY}"}}, 5)
    assert caught[0].where == f"cache.set({key!r})"
    with expect_canary_leak("cache"):
        cache.set_many({key: [TOKEN]}, 5)
    cache.delete(key)


# --- database --------------------------------------------------------------------------------


def test_every_table_has_the_guard_trigger(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND NOT EXISTS (
                 SELECT 1 FROM pg_trigger t
                 WHERE t.tgrelid = c.oid AND t.tgname = 'zzz_canary_guard' AND t.tgenabled = 'O')
            """
        )
        unguarded = [name for (name,) in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'zzz_canary_guard'")
        (guarded,) = cursor.fetchone()
    assert unguarded == []
    assert guarded >= 20  # auth, sessions, audit, change requests, catalogs, bulk jobs, …


@pytest.mark.parametrize("value", [KEY, base64.b64encode(f"Bearer {TOKEN}".encode()).decode()])
def test_a_row_holding_a_secret_is_refused_and_caught(db: None, value: str) -> None:
    with (
        expect_canary_leak("database") as caught,
        pytest.raises(DatabaseError, match="canary API key written to auth_user"),
        transaction.atomic(),
    ):
        User.objects.create(username="leaky", first_name=value[:150])
    assert caught[0].where == "a row written to table auth_user"
    user = User.objects.create(username="fine", first_name="no secret")
    with expect_canary_leak("database"), pytest.raises(DatabaseError), transaction.atomic():
        User.objects.filter(pk=user.pk).update(last_name=KEY)


def test_a_refused_row_is_caught_even_when_the_error_is_swallowed(db: None) -> None:
    with expect_canary_leak("database"):
        try:
            with transaction.atomic():
                User.objects.create(username="quiet", email=f"{KEY}@example.com")
        except DatabaseError:
            pass


@pytest.mark.django_db(transaction=True)
def test_the_trigger_works_in_transactional_tests_too() -> None:
    with expect_canary_leak("database"), pytest.raises(DatabaseError):
        User.objects.create(username="leaky", last_name=KEY)
    assert not User.objects.filter(username="leaky").exists()


# --- Celery ----------------------------------------------------------------------------------


@celery_app.task(name="tests.canary_guard.echo")
def echo(value: str) -> str:
    return value


@celery_app.task(name="tests.canary_guard.fail")
def fail(value: str) -> None:
    raise ValueError(f"could not use {value}")


def _celery_leaks(caught: list[Leak]) -> set[str]:
    return {leak.where for leak in caught if leak.channel == "celery"}


def test_an_eager_task_with_a_secret_in_its_arguments_or_result_is_caught(
    eager_celery: None,
) -> None:
    # Celery's own log line for the task may show the secret too: any channel is expected.
    with expect_canary_leak() as caught:
        echo.delay(KEY)
    assert _celery_leaks(caught) == {
        "arguments of task tests.canary_guard.echo",
        "result of task tests.canary_guard.echo",
    }


def test_a_task_failure_naming_a_secret_is_caught(eager_celery: None) -> None:
    with expect_canary_leak() as caught:
        fail.delay(base64.b64encode(TOKEN.encode()).decode())
    assert "failure of task tests.canary_guard.fail" in _celery_leaks(caught)


def test_a_published_message_holding_a_secret_is_caught() -> None:
    queue = f"canary-guard-{uuid.uuid4().hex}"  # a queue no worker reads
    assert not celery_app.conf.task_always_eager
    try:
        with expect_canary_leak("celery") as caught:
            echo.apply_async(kwargs={"value": KEY}, queue=queue)
        assert caught[0].where == "message published for task tests.canary_guard.echo"
    finally:
        with celery_app.connection_for_write() as conn:
            Queue(queue).bind(conn.default_channel).delete()
