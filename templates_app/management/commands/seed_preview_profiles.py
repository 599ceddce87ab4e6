from typing import Any

from django.core.management.base import BaseCommand

from console.audit.services import SystemActor
from console.workspaces import workspace_override, workspaces_all
from templates_app.services import preview_profiles_seed


class Command(BaseCommand):
    help = "Create the demo preview profiles that are missing, in every workspace (`make run`)."

    def handle(self, *args: Any, **options: Any) -> None:
        for workspace in workspaces_all():
            with workspace_override(workspace):
                made = preview_profiles_seed(actor=SystemActor("seed"))
            self.stdout.write(f"Preview profiles created in {workspace.label}: {len(made)}")
