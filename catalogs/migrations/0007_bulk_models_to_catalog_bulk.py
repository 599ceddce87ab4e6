from django.db import migrations


class Migration(migrations.Migration):
    """The bulk job models belong to the catalog_bulk app now: drop them from this app's
    state only. Their tables stay, under the same names (catalog_bulk 0001 adopts them)."""

    dependencies = [
        ("catalogs", "0006_bulkjob_details_removed_at"),
        ("catalog_bulk", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # Referring models first, so no state ever points at a removed model.
                migrations.DeleteModel(name="BulkReadBack"),
                migrations.DeleteModel(name="BulkRow"),
                migrations.DeleteModel(name="BulkBatch"),
                migrations.DeleteModel(name="BulkJob"),
            ],
            database_operations=[],
        ),
    ]
