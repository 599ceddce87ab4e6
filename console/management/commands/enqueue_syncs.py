from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.celery import task_enqueue
from console.workspaces import workspace_get, workspaces_all


class Command(BaseCommand):
    help = (
        "Queue a catalog mirror sync and a content sync now in every workspace (or the one "
        "named), instead of waiting for beat's first run (`make run` does this so a fresh "
        "console shows each workspace's Braze data at once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--countdown",
            type=float,
            default=0.0,
            help="seconds to wait before a worker runs them (e.g. while Braze starts)",
        )
        parser.add_argument(
            "--workspace", help="only this workspace (its key); default: every one configured"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        countdown = options["countdown"]
        try:
            chosen = [workspace_get(options["workspace"])] if options["workspace"] else None
        except LookupError as error:
            raise CommandError(str(error)) from None
        for workspace in chosen or workspaces_all():
            # By name, as beat schedules them: the core imports no app's tasks module.
            task_enqueue(
                "catalogs.tasks.catalog_sync_schedule_task", workspace.key, countdown=countdown
            )
            task_enqueue(
                "templates_app.tasks.content_sync_task", workspace.key, countdown=countdown
            )
            self.stdout.write(
                f"Queued a catalog sync and a content sync in {workspace.key} (in {countdown:g} s)."
            )
