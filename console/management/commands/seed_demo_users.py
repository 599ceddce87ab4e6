from typing import Any

from django.core.management.base import BaseCommand

from console.demo_accounts import demo_account_notes
from console.services import demo_users_create


class Command(BaseCommand):
    help = "Create one demo user per role and print their credentials (development only)."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = demo_users_create()
        self.stdout.write("Demo users (development only):")
        for username, password, role in rows:
            line = f"  {role.value:<9} {username:<10} password: {password}"
            for note in demo_account_notes(username=username):
                line += f"  {note}"
            self.stdout.write(line)
        self.stdout.write(
            "  Reviewers and Admins are asked for a code: add their key to an authenticator "
            "app, or run `oathtool --totp -b KEY`."
        )
