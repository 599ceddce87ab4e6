"""Trigram indexes for the audit list's free-text search (pg_trgm is a trusted extension:
the database's owner may create it)."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0006_change_request_full_rate_limit"),
    ]

    operations = [
        TrigramExtension(),
        migrations.AddIndex(
            model_name="auditentry",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("action"), name="gin_trgm_ops"
                ),
                name="audit_action_trgm",
            ),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("actor_name"), name="gin_trgm_ops"
                ),
                name="audit_actor_name_trgm",
            ),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("resource_id"), name="gin_trgm_ops"
                ),
                name="audit_resource_id_trgm",
            ),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("resource_type"), name="gin_trgm_ops"
                ),
                name="audit_resource_type_trgm",
            ),
        ),
    ]
