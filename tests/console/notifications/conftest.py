import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from tests.console.changes.conftest import FakeBraze, registered

WEBHOOK_SECRET = "webhook-secret-for-the-tests-0123456789"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on loopback, in a thread of the test: records every request and
    answers `fail_next` statuses first (then 204)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)


@pytest.fixture
def receiver(settings: Settings) -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append(Received(dict(self.headers.items()), self.rfile.read(length)))
            status = state.fail_next.pop(0) if state.fail_next else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/console"
    settings.NOTIFY_WEBHOOK_URL = state.url
    settings.NOTIFY_WEBHOOK_SECRET = WEBHOOK_SECRET
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake_braze() -> Iterator[FakeBraze]:
    fake = FakeBraze(store={"shoe-1": {"id": "shoe-1", "name": "Shoe", "price": 10}})
    with registered("fake_item", fake, label="Fake item"):
        yield fake


@pytest.fixture
def run_on_commit(
    django_capture_on_commit_callbacks: Callable[..., Any], eager_celery: None
) -> Callable[..., Any]:
    """Use as `with run_on_commit(): ...` so emails, the apply and the webhook run at commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
