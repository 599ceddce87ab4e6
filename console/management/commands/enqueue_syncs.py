from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from console.celery import task_enqueue


class Command(BaseCommand):
    help = (
        "Queue a catalog mirror sync and a content sync now, instead of waiting for beat's "
        "first run (`make run` does this so a fresh console shows Braze's data at once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--countdown",
            type=float,
            default=0.0,
            help="seconds to wait before a worker runs them (e.g. while Braze starts)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        countdown = options["countdown"]
        # By name, as beat schedules them: the core imports no app's tasks module.
        task_enqueue("catalogs.tasks.catalog_sync_schedule_task", countdown=countdown)
        task_enqueue("templates_app.tasks.content_sync_task", countdown=countdown)
        self.stdout.write(f"Queued a catalog sync and a content sync (in {countdown:g} s).")
