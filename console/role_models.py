"""Roles held in one workspace only (console/roles.py reads them)."""

from django.conf import settings
from django.db import models

from console.workspaces import WORKSPACE_KEY_LENGTH


class WorkspaceRole(models.Model):
    """A role someone holds in one workspace. Any row for a person and a workspace replaces,
    in that workspace, the roles they hold everywhere else (their groups): an Editor
    everywhere with a Viewer row for production only browses production."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_roles"
    )
    workspace = models.CharField(max_length=WORKSPACE_KEY_LENGTH, db_index=True)
    # A console.roles.Role value.
    role = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "console"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "workspace", "role"], name="one_workspace_role_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} in {self.workspace} for user {self.user_id}"
