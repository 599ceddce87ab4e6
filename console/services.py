"""Writes of the console core. Keyword-only, typed, <entity>_<action>."""

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from console.demo_accounts import demo_account_extras
from console.roles import Role, user_roles_assign

# Development-only accounts, one per role, printed by `manage.py seed_demo_users`.
DEMO_USERS: tuple[tuple[str, Role, str], ...] = (
    ("viewer", Role.VIEWER, "Vera Viewer"),
    ("editor", Role.EDITOR, "Eddie Editor"),
    ("reviewer", Role.REVIEWER, "Rita Reviewer"),
    ("reviewer2", Role.REVIEWER, "Rob Reviewer"),
    ("auditor", Role.AUDITOR, "Audrey Auditor"),
    ("admin", Role.ADMIN, "Ada Admin"),
    # Grants of Reviewer or Admin, dashboard users and policies need a second Admin.
    ("admin2", Role.ADMIN, "Alan Admin"),
)


def demo_password(username: str) -> str:
    return f"{username}-demo-pass"


@transaction.atomic
def demo_users_create() -> list[tuple[str, str, Role]]:
    """Create (or reset) one demo account per role; returns (username, password, role)."""
    if not (settings.DEBUG or settings.TESTING):
        raise RuntimeError("Demo users are for development only (DEBUG is off).")
    created = []
    for username, role, full_name in DEMO_USERS:
        first, last = full_name.split(" ", 1)
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"},
        )
        user.set_password(demo_password(username))
        user.is_active = True
        user.save()
        user_roles_assign(user=user, roles={role})
        for extra in demo_account_extras():
            extra.prepare(user=user)
        created.append((username, demo_password(username), role))
    return created
