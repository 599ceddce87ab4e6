from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("console", "0006_change_request_full_rate_limit")]

    operations = [
        migrations.AddField(
            model_name="changerequest",
            name="apply_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="changerequest",
            index=models.Index(
                condition=models.Q(("apply_at__isnull", False), ("state", "approved")),
                fields=["apply_at"],
                name="cr_approved_apply_at",
            ),
        ),
    ]
