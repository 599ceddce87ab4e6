import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from console.audit.verify import audit_verify


class Command(BaseCommand):
    help = "Walk the audit hash chain and the signed checkpoints; exit 1 at the first break."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        report = audit_verify()
        elapsed = time.monotonic() - started
        for warning in report.warnings:
            self.stderr.write(f"warning: {warning}")
        for problem in report.problems:
            self.stderr.write(f"FAIL: {problem}")
        summary = (
            f"{report.entries} entries, head seq {report.last_seq}, "
            f"{report.checkpoints} checkpoints, {elapsed:.1f}s"
        )
        if not report.ok:
            raise CommandError(
                f"audit trail does NOT verify; first bad entry: seq {report.first_bad_seq} "
                f"({summary})"
            )
        self.stdout.write(f"audit trail verifies: {summary}")
