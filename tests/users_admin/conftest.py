from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from console.braze import close_client
from console.celery import app as celery_app
from tests.fixtures.sandbox import SandboxHandle


@pytest.fixture
def scim_sandbox(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The console's Braze client pointed at the sandbox, with its SCIM token."""
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_SCIM_TOKEN = braze_sandbox.scim_token
    settings.BRAZE_SCIM_ORIGIN = braze_sandbox.scim_origin
    # The reference collection predates granular permissions: only legacy names existed.
    settings.BRAZE_SCIM_PERMISSIONS = "legacy" if braze_sandbox.reference else "granular"
    close_client()  # the client is built once per process from the settings
    yield braze_sandbox
    close_client()


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks: Callable[..., Any]) -> Iterator[Any]:
    """`with run_on_commit(): ...` runs the apply task (eagerly) when the block commits."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield lambda: django_capture_on_commit_callbacks(execute=True)
    celery_app.conf.task_always_eager = old
