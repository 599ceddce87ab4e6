# Preview profiles and preview settings belong to a workspace; existing rows to the default one.

from django.db import migrations, models

import console.workspaces


class Migration(migrations.Migration):
    dependencies = [
        ("templates_app", "0004_contentversion_workspace"),
    ]

    operations = [
        migrations.AddField(
            model_name="previewprofile",
            name="workspace",
            field=models.CharField(
                db_index=True, default=console.workspaces.workspace_default_key, max_length=40
            ),
        ),
        migrations.AlterField(
            model_name="previewprofile",
            name="name",
            field=models.CharField(max_length=100),
        ),
        migrations.AddConstraint(
            model_name="previewprofile",
            constraint=models.UniqueConstraint(
                fields=("workspace", "name"), name="preview_profile_unique_name"
            ),
        ),
        migrations.AddField(
            model_name="previewsettings",
            name="workspace",
            field=models.CharField(default=console.workspaces.workspace_default_key, max_length=40),
        ),
        migrations.AlterField(
            model_name="previewsettings",
            name="workspace",
            field=models.CharField(
                default=console.workspaces.workspace_default_key, max_length=40, unique=True
            ),
        ),
    ]
