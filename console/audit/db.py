"""Privileges of the run-time database role.

The console runs as a login that owns nothing (settings.DATABASE_RUNTIME_ROLE); the
schema owner runs migrations and, after each, grants that role what it needs: read and
write on ordinary tables, but only SELECT and INSERT on the audit tables.
"""

import logging

from django.conf import settings
from django.db import connections
from psycopg import sql

logger = logging.getLogger(__name__)

APPEND_ONLY_TABLES = ("audit_entry", "audit_checkpoint")


def runtime_privileges_grant(*, using: str = "default", role: str | None = None) -> bool:
    """Grant the run-time role its privileges; False when the role does not exist."""
    role = role or settings.DATABASE_RUNTIME_ROLE
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", [role]
        )
        current, exists = cursor.fetchone()
        if not exists or current == role:
            return False
        r = sql.Identifier(role)
        statements = [
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(r),
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(r),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(r),
            sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(r),
            sql.SQL("REVOKE UPDATE, TRUNCATE ON audit_personal FROM {}").format(r),
        ]
        for table in APPEND_ONLY_TABLES:
            statements.append(
                sql.SQL(
                    "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {} FROM {}"
                ).format(sql.Identifier(table), r)
            )
        for statement in statements:
            cursor.execute(statement)
    logger.info("granted run-time privileges to %s", role)
    return True
