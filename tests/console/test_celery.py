from __future__ import annotations

import pytest
from django.test import override_settings

from catalog_bulk import tasks as bulk_tasks
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


def _queue_of(task_name: str) -> str:
    """The queue a message for this task is sent to, as the router decides it."""
    route = celery.app.amqp.router.route({}, task_name, args=(), kwargs={})
    return str(route["queue"].name)


def test_an_approved_change_is_applied_from_the_interactive_queue() -> None:
    assert _queue_of("console.changes.tasks.change_request_apply_task") == "interactive"


def test_bulk_senders_parses_and_read_backs_go_to_the_bulk_queue() -> None:
    for task in (
        bulk_tasks.bulk_send_task,
        bulk_tasks.bulk_parse_task,
        bulk_tasks.bulk_readback_task,
    ):
        assert _queue_of(task.name) == "bulk"


def test_bulk_tasks_keep_the_names_messages_already_queued_carry() -> None:
    # Messages and beat's schedule name a task by string: a renamed task would strand them.
    for function in ("parse", "send", "readback", "sweep", "retention"):
        task = getattr(bulk_tasks, f"bulk_{function}_task")
        assert task.name == f"catalogs.bulk.tasks.bulk_{function}_task"
        assert celery.app.tasks[task.name].run is task.run


def test_catalog_and_content_syncs_go_to_the_sync_queue() -> None:
    assert _queue_of("catalogs.tasks.catalog_sync_task") == "sync"
    assert _queue_of("templates_app.tasks.content_sync_task") == "sync"


def test_every_task_of_the_console_is_routed_explicitly() -> None:
    celery.app.loader.import_default_modules()
    ours = {name for name in celery.app.tasks if not name.startswith(("celery.", "tests."))}
    assert ours == set(celery.TASK_QUEUES)
    assert set(celery.TASK_QUEUES.values()) <= set(celery.QUEUES)


def test_a_task_sent_by_name_as_beat_does_is_routed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(
        celery.app.amqp, "send_task_message", lambda producer, name, message, **kw: sent.append(kw)
    )
    with celery.app.producer_or_acquire() as producer:
        celery.app.send_task("catalogs.tasks.catalog_sync_schedule_task", producer=producer)
    assert sent[0]["queue"].name == "sync"  # type: ignore[attr-defined]
