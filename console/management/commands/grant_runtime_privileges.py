from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from console.audit.db import runtime_privileges_grant


class Command(BaseCommand):
    help = "Grant the run-time DB role its privileges (append-only on the audit tables)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        done = runtime_privileges_grant(using=options["database"])
        self.stdout.write("granted" if done else "nothing to grant (role missing or same user)")
