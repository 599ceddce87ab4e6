"""Trigram indexes for the audit list's free-text search, one per searched column.

Created in SQL, as catalogs' is (0001_initial): GinIndex would need django.contrib.postgres
installed for nothing else. Each expression is exactly what the search's icontains compiles
to, UPPER("column"::text), or PostgreSQL would not use it.
"""

from django.db import migrations

COLUMNS = ("action", "actor_name", "resource_id", "resource_type")


class Migration(migrations.Migration):
    dependencies = [("console", "0008_notifications")]

    operations = [
        # Trusted since PostgreSQL 13: the database's owner may create it.
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop
        ),
        *(
            migrations.RunSQL(
                f"CREATE INDEX audit_{column}_trgm ON audit_entry"
                f" USING gin (upper(({column})::text) gin_trgm_ops)",
                reverse_sql=f"DROP INDEX IF EXISTS audit_{column}_trgm",
            )
            for column in COLUMNS
        ),
    ]
