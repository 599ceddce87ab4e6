"""Playwright drives Debian's Chromium (never a downloaded browser build)."""

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from pytest_django.fixtures import Settings

from console.braze import close_client
from console.celery import app as celery_app
from tests.fixtures.sandbox import SandboxHandle

# Playwright's sync API runs an event loop in this thread, and session fixtures (the
# test database) may be set up after it starts; the ORM calls made by the tests
# themselves are still synchronous and safe. Set at import so it precedes both.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


# The Braze sandbox behind the console for a browser test, Celery eager (the live server's
# thread applies what a reviewer approves), and a limiter of the test's own. A test module
# needing more (a profile, other limits) defines its own `braze`.
@pytest.fixture
def braze(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"browser-{uuid.uuid4().hex}",
    }
    close_client()
    cache.clear()
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield braze_sandbox
    celery_app.conf.task_always_eager = old
    close_client()
    cache.clear()
