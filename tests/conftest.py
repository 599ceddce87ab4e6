import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from pytest_django.fixtures import Settings

from console.roles import Role
from tests.factories import user_with_role

pytest_plugins = [
    "tests.fixtures.canary",
    "tests.fixtures.oidc",
    "tests.fixtures.sandbox",
    "tests.fixtures.webhook",
    "tests.fixtures.workers",
    "tests.fixtures.workspaces",
]


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Celery tasks run in the test process when they are enqueued."""
    from console.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old


@pytest.fixture
def client_for(db: None) -> Callable[[Role | None], Client]:
    """A signed-in test client for a fresh user with the given role (None: no role)."""

    def make(role: Role | None) -> Client:
        client = Client()
        client.force_login(user_with_role(role))
        return client

    return make


@pytest.fixture
def editor(db: None) -> User:
    return user_with_role(Role.EDITOR)


@pytest.fixture
def reviewer(db: None) -> User:
    return user_with_role(Role.REVIEWER)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> None:
    """Let the schema owner TRUNCATE the audit tables in the test database only, and put the
    canary guard's trigger on every table (tests/fixtures/canary.py).

    Transactional tests are cleaned up with TRUNCATE, which the audit triggers refuse
    except to the table owner in a session marked for maintenance (see 0002_audit).
    """
    superuser_url = os.environ.get("PG_SUPERUSER_URL")
    if not superuser_url:
        return
    name = connections["default"].settings_dict["NAME"]
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET console.audit_maintenance = 'on'").format(
                psycopg.sql.Identifier(name)
            )
        )
    # Imported here: a module the conftest imports first could not be rewritten as a plugin.
    from tests.fixtures.canary import install_database_guard

    install_database_guard(superuser_url, name)
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        connections.close_all()


@pytest.fixture(autouse=True)
def _audit_checkpoint_dir(settings: Settings, tmp_path: Path) -> None:
    # Checkpoint files live outside the database, so each test gets its own.
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"


@pytest.fixture(autouse=True)
def _fresh_signin_counters_and_health() -> None:
    """Sign-in failure counts live in Redis and /healthz's report in the process: each test
    starts with neither, so one test's failed sign-ins never throttle the next one."""
    import redis

    from console.health import health_report_forget
    from console.signin import signin_counters_clear

    health_report_forget()
    with contextlib.suppress(redis.RedisError):  # no Redis: nothing was counted either
        signin_counters_clear()
