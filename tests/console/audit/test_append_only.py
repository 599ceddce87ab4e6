"""Every way the run-time role might change or remove audit rows is refused."""

from collections.abc import Callable

import psycopg
import pytest
from django.db import transaction

from console.audit.models import AuditCheckpoint, AuditEntry
from console.audit.services import SYSTEM, audit_append, audit_checkpoint_issue

pytestmark = pytest.mark.django_db(transaction=True)

type ConnectAs = Callable[[str], psycopg.Connection]


@pytest.fixture
def app(connect_as: ConnectAs, runtime_role: str) -> psycopg.Connection:
    with transaction.atomic():
        audit_append(actor=SYSTEM, action="test.seed", data={"v": 1})
        audit_append(actor=SYSTEM, action="test.seed", data={"v": 2})
    audit_checkpoint_issue()
    return connect_as(runtime_role)


def _refused(conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_runtime_role_can_append(app: psycopg.Connection) -> None:
    # It reads and inserts (the service needs both), nothing more.
    assert app.execute("SELECT count(*) FROM audit_entry").fetchone() == (2,)


@pytest.mark.parametrize("table", ["audit_entry", "audit_checkpoint"])
def test_update_delete_and_truncate_are_refused(app: psycopg.Connection, table: str) -> None:
    column = "action" if table == "audit_entry" else "head_hash"
    _refused(app, f"UPDATE {table} SET {column} = 'x'")  # noqa: S608
    _refused(app, f"DELETE FROM {table}")  # noqa: S608
    _refused(app, f"TRUNCATE {table}")
    _refused(app, f"TRUNCATE {table} CASCADE")


def test_disabling_the_trigger_is_refused(app: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_refuse_rows")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("ALTER TABLE audit_entry DISABLE TRIGGER ALL")


def test_trigger_bypass_settings_are_refused(app: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SET session_replication_role = replica")
    # Settings other tools honour (pgtrigger's ignore hook, our own maintenance flag)
    # can be set by anyone, and change nothing.
    for setting in ("pgtrigger.ignore", "console.audit_maintenance"):
        app.execute(f"SET {setting} = 'on'")
        _refused(app, "UPDATE audit_entry SET action = 'x'")
        _refused(app, "TRUNCATE audit_entry")


def test_the_trigger_refuses_even_the_owner(app: psycopg.Connection) -> None:
    # Migrations and the tests' own connection run as the owner: UPDATE/DELETE are
    # refused by the trigger, not only by missing privileges.
    with pytest.raises(Exception, match="append-only"):
        AuditEntry.objects.update(action="x")
    with pytest.raises(Exception, match="append-only"):
        AuditEntry.objects.all().delete()
    with pytest.raises(Exception, match="append-only"):
        AuditCheckpoint.objects.all().delete()


def test_the_runtime_role_owns_nothing(app: psycopg.Connection, runtime_role: str) -> None:
    owned = app.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
        " WHERE r.rolname = %s",
        [runtime_role],
    ).fetchone()
    assert owned == (0,)
    is_super = app.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert is_super == (False,)
