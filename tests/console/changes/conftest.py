from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from unittest import mock

import pytest

from console.changes import resource_types
from console.changes.appliers import Applier, merge_state
from console.changes.resource_types import (
    Identifiers,
    ResourceType,
    resource_type_get,
    resource_type_register,
)


@contextmanager
def registered(key: str, applier: Applier, **options: Any) -> Iterator[ResourceType]:
    """A resource type of the test's own, registered while the block runs."""
    kind = ResourceType(
        key=key,
        label=options.pop("label", key.replace("_", " ").capitalize()),
        applier=applier,
        identifiers=options.pop("identifiers", Identifiers("{id}")),
        **options,
    )
    resource_type_register(kind)
    try:
        yield kind
    finally:
        resource_types._REGISTRY.pop(key, None)


def reregister(key: str, **changes: Any) -> ResourceType:
    """Change what a registered test type declares (the test's fixture removes it after)."""
    kind = replace(resource_type_get(key), **changes)
    resource_type_register(kind)
    return kind


@dataclass
class FakeBraze:
    """An in-memory Braze for one resource type; `fail_next` makes sends raise."""

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
    with registered("fake_item", fake, label="Fake item"):
        yield fake


@pytest.fixture
def run_on_commit(
    django_capture_on_commit_callbacks: Callable[..., Any], eager_celery: None
) -> Callable[..., Any]:
    """Use as `with run_on_commit(): ...` so emails and the apply task run at commit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@contextmanager
def clock_at(moment: datetime) -> Iterator[None]:
    """Every `timezone.now()` (the services' and the models' auto_now) answers `moment`."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield
