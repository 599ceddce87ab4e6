import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from pytest_django.fixtures import Settings

from console import health
from console.health import check_celery
from console.roles import Role

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def reachable_http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def celery_worker_process(tmp_path: Path) -> Iterator[None]:
    # The worker's output goes to the test's tmp_path, which the canary guard scans.
    log = (tmp_path / "celery-worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool=solo", "-l", "info"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not check_celery()[0]:
            assert time.monotonic() < deadline, "the Celery worker did not answer in 30 s"
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


@pytest.fixture
def signed_in(client_for: Callable[[Role | None], Client]) -> Client:
    return client_for(Role.VIEWER)


@pytest.mark.django_db
def test_it_reports_each_dependency_and_fails_when_one_is_down(signed_in: Client) -> None:
    with override_settings(BRAZE_REST_ENDPOINT="http://127.0.0.1:9"):
        response = signed_in.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["braze"]["ok"] is False


@pytest.mark.django_db
@pytest.mark.slow
def test_it_answers_200_when_database_redis_worker_and_braze_are_up(
    reachable_http_server: str, celery_worker_process: None, signed_in: Client
) -> None:
    with override_settings(BRAZE_REST_ENDPOINT=reachable_http_server):
        response = signed_in.get(reverse("healthz"))
    assert response.json()["checks"]["celery"]["ok"] is True
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_it_reports_redis_down_without_leaking_the_url(signed_in: Client) -> None:
    with override_settings(
        REDIS_URL="redis://127.0.0.1:9/0", BRAZE_REST_ENDPOINT="http://127.0.0.1:9"
    ):
        response = signed_in.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert "127.0.0.1:9" not in response.content.decode()


@pytest.fixture
def counted_checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The costly checks, counted: a Celery ping and a request to Braze (with the key's
    permissions and the instance in its detail, as a real one gives)."""
    calls = {"celery": 0, "braze": 0}

    def celery() -> tuple[bool, str]:
        calls["celery"] += 1
        return True, "1 worker(s)"

    def braze() -> tuple[bool, str]:
        calls["braze"] += 1
        detail = "reachable (rest.iad-01.braze.com); key has 3 of 5 probed permissions"
        return True, detail + "; missing: catalogs.delete, templates.email.update"

    monkeypatch.setattr(health, "check_celery", celery)
    monkeypatch.setattr(health, "check_braze", braze)
    return calls


@pytest.mark.django_db
def test_anonymous_callers_learn_only_whether_it_is_alive(counted_checks: dict[str, int]) -> None:
    response = Client().get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    body = response.content.decode()
    for detail in ("braze.com", "missing", "catalogs.delete", "worker"):
        assert detail not in body


@pytest.mark.django_db
def test_signed_in_users_get_every_check_with_its_detail(
    counted_checks: dict[str, int], signed_in: Client
) -> None:
    body = signed_in.get(reverse("healthz")).json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "celery", "braze"}
    assert "missing: catalogs.delete" in body["checks"]["braze"]["detail"]


@pytest.mark.django_db
def test_the_checks_run_once_per_cache_period_however_often_it_is_asked(
    counted_checks: dict[str, int], settings: Settings, signed_in: Client
) -> None:
    settings.HEALTHZ_CACHE_SECONDS = 0.5
    for client in (Client(), Client(), signed_in, Client()):
        assert client.get(reverse("healthz")).status_code == 200
    assert counted_checks == {"celery": 1, "braze": 1}
    time.sleep(0.6)
    Client().get(reverse("healthz"))
    assert counted_checks == {"celery": 2, "braze": 2}
