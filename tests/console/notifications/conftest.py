from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.console.changes.conftest import FakeBraze, registered

# The receiver fixture is shared with the browser tests (tests/fixtures/webhook.py).
from tests.fixtures.webhook import WEBHOOK_SECRET, Receiver

__all__ = ["WEBHOOK_SECRET", "Receiver"]


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
