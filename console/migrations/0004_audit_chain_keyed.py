"""From here on every audit entry's hash is keyed with AUDIT_CHAIN_KEY.

A trail that already has entries gets a boundary entry (`audit.chain_keyed`, itself keyed)
naming the last entry hashed the old way; the verifier checks those with the old rule.
A new trail has no boundary: all of it is keyed.
"""

from typing import Any

from django.db import migrations


def mark_boundary(apps: Any, schema_editor: Any) -> None:
    from console.audit.services import audit_chain_key_boundary

    audit_chain_key_boundary(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("console", "0003_change_requests")]

    operations = [migrations.RunPython(mark_boundary, migrations.RunPython.noop)]
