"""Structured logs: JSON lines carrying the request id (into the tasks a request starts), the
actor and the workspace, and never a secret."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from console.logs import MASK, logging_config
from console.roles import Role
from console.workspaces import workspace_override
from tests.factories import user_with_role
from tests.fixtures.canary import CANARIES
from tests.fixtures.workers import StartWorker


def rendered(record: logging.LogRecord) -> dict[str, Any]:
    """The line the console's log handler writes for ``record``, read back as JSON."""
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert handler.formatter is not None
    line = handler.formatter.format(record)
    assert "\n" not in line, "one JSON object a line"
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def lines_of(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    lines = [rendered(record) for record in caplog.records]
    return [line for line in lines if line.get("event") == event]


def test_production_logs_are_json_lines_and_development_logs_are_readable() -> None:
    assert django_settings.LOG_FORMAT == "json"  # DEBUG off
    console = logging_config(log_format="console", level="INFO")
    renderer = console["formatters"]["structured"]["processors"][-1]
    assert isinstance(renderer, structlog.dev.ConsoleRenderer)
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config(log_format="xml", level="INFO")


@pytest.mark.django_db
def test_a_request_line_names_its_id_actor_roles_and_workspace(
    caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "workspace": "acme-eu"}
    user = user_with_role(Role.AUDITOR, username="ada")
    client = Client()
    client.force_login(user)
    with caplog.at_level(logging.INFO):
        assert client.get(reverse("audit:list")).status_code == 200
    (line,) = lines_of(caplog, "request_finished")
    assert line["request"] == "GET /audit/"
    assert line["code"] == 200
    assert len(line["request_id"]) == 36
    assert line["user_id"] == user.pk
    assert line["actor"] == "ada"
    assert line["roles"] == ["Auditor"]
    assert line["workspace"] == "acme-eu"
    assert line["ip"] == "127.0.0.1"
    assert line["level"] == "info"
    assert line["timestamp"]


@pytest.mark.django_db
def test_the_token_of_an_invitation_link_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    token = "cz7k3q-0123456789abcdef0123456789abcdef"
    with caplog.at_level(logging.DEBUG):
        Client().get(f"/users/welcome/MQ/{token}/?token={token}&next=/")
    lines = [rendered(r) for r in caplog.records]
    assert lines
    assert not any(token in json.dumps(line) for line in lines)
    (finished,) = [line for line in lines if line["event"] == "request_finished"]
    assert finished["request"] == f"GET /users/welcome/MQ/{MASK}/?token={MASK}&next=%2F"


def test_secret_keys_and_the_configured_secrets_are_masked_in_every_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = structlog.get_logger("console.test")
    with caplog.at_level(logging.INFO):
        log.info(
            "calling braze",
            api_key=CANARIES.api_key,
            headers={"Authorization": f"Bearer {CANARIES.scim_token}", "Accept": "json"},
            password="hunter2-hunter2",
            note=f"the key {CANARIES.api_key} was refused",
            secret_key=django_settings.SECRET_KEY,
        )
        logging.getLogger("console.test").warning(
            "stdlib line with %s", f"key={CANARIES.api_key}", extra={"token": "abc123456789"}
        )
    first, second = (rendered(r) for r in caplog.records)
    assert first["api_key"] == MASK
    assert first["headers"] == {"Authorization": MASK, "Accept": "json"}
    assert first["password"] == MASK
    assert first["secret_key"] == MASK
    assert first["note"] == f"the key {MASK} was refused"
    assert second["event"] == f"stdlib line with key={MASK}"
    assert second["token"] == MASK
    text = json.dumps([first, second])
    assert CANARIES.api_key not in text
    assert CANARIES.scim_token not in text
    assert django_settings.SECRET_KEY not in text


# --- the request id in the lines of the task a request started -------------------------------


def _worker_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_requests_id_appears_in_the_web_line_and_in_the_lines_of_the_task_it_started(
    caplog: pytest.LogCaptureFixture,
    settings: Settings,
    tmp_path: Path,
    start_celery_worker: StartWorker,
) -> None:
    db = connections["default"].settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + db["NAME"],
        "AUDIT_CHECKPOINT_DIR": str(settings.AUDIT_CHECKPOINT_DIR),
        "LOG_FORMAT": "json",
    }
    start_celery_worker(env, "logs")
    auditor = user_with_role(Role.AUDITOR, username="grace")
    client = Client()
    client.force_login(auditor)

    with caplog.at_level(logging.INFO):
        response = client.post(reverse("audit:integrity_verify"))
    assert response.status_code == 303
    (web,) = lines_of(caplog, "request_finished")
    (enqueued,) = lines_of(caplog, "task_enqueued")
    assert enqueued["request_id"] == web["request_id"]

    log = tmp_path / "worker-logs.log"

    def task_finished() -> bool:
        # The worker may first run tasks earlier tests left on its queues: wait for this one.
        return any(
            line.get("event") == "task_succeeded"
            and line.get("task_id") == enqueued["child_task_id"]
            for line in _worker_lines(log)
        )

    _wait_for(task_finished, timeout=60)
    task_lines = [
        line for line in _worker_lines(log) if line.get("task_id") == enqueued["child_task_id"]
    ]
    events = [line["event"] for line in task_lines]
    assert "task_started" in events
    assert "task_succeeded" in events
    for line in task_lines:
        assert line["request_id"] == web["request_id"], line
        assert line["actor"] == "grace"
        assert line["user_id"] == auditor.pk
    assert task_lines[0]["task"] == "console.audit.tasks.audit_verify_task"


@pytest.mark.django_db
@pytest.mark.usefixtures("two_workspaces")
def test_with_several_workspaces_a_line_names_the_one_being_worked_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR, username="ada"))
    with caplog.at_level(logging.INFO):
        assert client.get("/w/production/audit/").status_code == 200
        with workspace_override("staging"):
            logging.getLogger("catalogs.sync").info("a task's line")
    (line,) = lines_of(caplog, "request_finished")
    assert line["workspace"] == "production"
    (task_line,) = lines_of(caplog, "a task's line")
    assert task_line["workspace"] == "staging"
