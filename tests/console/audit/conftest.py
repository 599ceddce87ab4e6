import os
from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import connections


def _conninfo(user: str) -> str:
    db = connections["default"].settings_dict
    parts = {"dbname": db["NAME"], "user": user, "host": db["HOST"] or "", "port": db["PORT"] or ""}
    return " ".join(f"{k}={v}" for k, v in parts.items() if v != "")


@pytest.fixture
def connect_as() -> Iterator[Callable[[str], psycopg.Connection]]:
    """Raw connections to the test database as another PostgreSQL role."""
    opened: list[psycopg.Connection] = []

    def connect(role: str) -> psycopg.Connection:
        if role == "superuser":
            url = os.environ.get("PG_SUPERUSER_URL")
            if not url:
                pytest.skip("PG_SUPERUSER_URL is not set (run through scripts/test)")
            conn = psycopg.connect(
                url, dbname=connections["default"].settings_dict["NAME"], autocommit=True
            )
        else:
            conn = psycopg.connect(_conninfo(role), autocommit=True)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def runtime_role() -> str:
    return settings.DATABASE_RUNTIME_ROLE


@pytest.fixture
def owner_tamper(
    connect_as: Callable[[str], psycopg.Connection],
) -> Iterator[psycopg.Connection]:
    """A connection that can alter committed audit rows, as the table owner could."""
    # The superuser stands in for the owner: both can switch the triggers off.
    conn = connect_as("superuser")
    conn.execute("ALTER TABLE audit_entry DISABLE TRIGGER USER")
    yield conn
    conn.execute("ALTER TABLE audit_entry ENABLE ALWAYS TRIGGER audit_entry_refuse_rows")
    conn.execute("ALTER TABLE audit_entry ENABLE ALWAYS TRIGGER audit_entry_refuse_truncate")
