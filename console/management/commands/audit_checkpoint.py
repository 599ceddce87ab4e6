from typing import Any

from django.core.management.base import BaseCommand

from console.audit.services import audit_checkpoint_issue


class Command(BaseCommand):
    help = "Issue a signed checkpoint of the audit chain's head now (beat does this on a schedule)."

    def handle(self, *args: Any, **options: Any) -> None:
        cp = audit_checkpoint_issue()
        self.stdout.write(f"checkpoint {cp.pk}: seq {cp.last_seq} head {cp.head_hash[:16]}…")
