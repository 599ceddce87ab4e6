from __future__ import annotations

import pytest
from django.test import override_settings

from console import celery


@pytest.fixture
def nice_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(celery.os, "nice", calls.append)
    return calls


@override_settings(WORKER_NICENESS=10)
def test_worker_processes_yield_the_cpu_to_the_web_processes(nice_calls: list[int]) -> None:
    celery.worker_process_init.send(sender=None)
    assert nice_calls == [10]


@override_settings(WORKER_NICENESS=0)
def test_a_niceness_of_zero_leaves_the_priority_alone(nice_calls: list[int]) -> None:
    celery.worker_process_init.send(sender=None)
    assert nice_calls == []
