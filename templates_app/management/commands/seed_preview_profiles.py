from typing import Any

from django.core.management.base import BaseCommand

from console.audit.services import SystemActor
from templates_app.services import preview_profiles_seed


class Command(BaseCommand):
    help = "Create the demo preview profiles that are missing (development: `make run`)."

    def handle(self, *args: Any, **options: Any) -> None:
        made = preview_profiles_seed(actor=SystemActor("seed"))
        self.stdout.write(f"Preview profiles created: {len(made)}")
