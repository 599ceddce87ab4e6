from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from console.changes import appliers
from console.changes.appliers import merge_state


@dataclass
class FakeBraze:
    """An in-memory Braze for one resource type; `fail_next` makes sends raise."""

    label: str = "Fake item"
    store: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)
    land_then_fail: bool = False

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        value = self.store.get(identifier)
        return dict(value) if value is not None else None

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self.fail_next and not self.land_then_fail:
            raise self.fail_next.pop(0)
        self.sent.append((action, identifier, payload))
        new = merge_state(self.store.get(identifier), action, payload)
        if new is None:
            self.store.pop(identifier, None)
        else:
            self.store[identifier] = new
        if self.fail_next:  # Braze accepted the write, but its answer never arrived
            raise self.fail_next.pop(0)
        return {"message": "success"}

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        current = self.store.get(identifier)
        if action == "delete":
            return current is None
        return current is not None and all(current.get(k) == v for k, v in payload.items())

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)


@pytest.fixture
def fake_braze() -> Iterator[FakeBraze]:
    fake = FakeBraze(store={"shoe-1": {"id": "shoe-1", "name": "Shoe", "price": 10}})
    appliers.register_applier("fake_item", fake)
    yield fake
    appliers._APPLIERS.pop("fake_item", None)


@pytest.fixture
def run_on_commit(
    django_capture_on_commit_callbacks: Callable[..., Any], eager_celery: None
) -> Callable[..., Any]:
    """Use as `with run_on_commit(): ...` so emails and the apply task run at commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
