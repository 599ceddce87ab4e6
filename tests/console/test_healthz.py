import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from console.health import check_celery

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


@pytest.mark.django_db
def test_it_reports_each_dependency_and_fails_when_one_is_down() -> None:
    with override_settings(BRAZE_REST_ENDPOINT="http://127.0.0.1:9"):
        response = Client().get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["braze"]["ok"] is False


@pytest.mark.django_db
@pytest.mark.slow
def test_it_answers_200_when_database_redis_worker_and_braze_are_up(
    reachable_http_server: str, celery_worker_process: None
) -> None:
    with override_settings(BRAZE_REST_ENDPOINT=reachable_http_server):
        response = Client().get(reverse("healthz"))
    assert response.json()["checks"]["celery"]["ok"] is True
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_it_reports_redis_down_without_leaking_the_url() -> None:
    with override_settings(
        REDIS_URL="redis://127.0.0.1:9/0", BRAZE_REST_ENDPOINT="http://127.0.0.1:9"
    ):
        response = Client().get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert "127.0.0.1:9" not in response.content.decode()
