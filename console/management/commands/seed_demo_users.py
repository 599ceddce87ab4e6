from typing import Any

from django.core.management.base import BaseCommand

from console.services import demo_users_create


class Command(BaseCommand):
    help = "Create one demo user per role and print their credentials (development only)."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = demo_users_create()
        self.stdout.write("Demo users (development only):")
        for username, password, role in rows:
            self.stdout.write(f"  {role.value:<9} {username:<10} password: {password}")
