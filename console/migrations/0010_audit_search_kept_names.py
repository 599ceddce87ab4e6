"""Trigram indexes for the audit search over the names entries keep in their data: the
resource's name (`resource_name`, or `name` for older writers) and the change request's
title, so an auditor finds a Content Block's events by its name, not its Braze id.

Each expression is exactly what `data__<key>__icontains` compiles to (as in 0009).
"""

from django.db import migrations

KEYS = ("resource_name", "name", "title")


class Migration(migrations.Migration):
    dependencies = [("console", "0009_audit_search_trigram")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX audit_data_{key}_trgm ON audit_entry"
            f" USING gin (upper((data ->> '{key}')::text) gin_trgm_ops)",
            reverse_sql=f"DROP INDEX IF EXISTS audit_data_{key}_trgm",
        )
        for key in KEYS
    ]
