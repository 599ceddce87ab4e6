from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("console", "0005_account_sponsors")]

    operations = [
        migrations.AddField(
            model_name="changerequest",
            name="full_rate_limit",
            field=models.BooleanField(default=False),
        ),
    ]
