import logging
import signal
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from console.audit.models import AuditCheckpoint
from console.audit.services import audit_checkpoint_issue, audit_checkpoint_sign_due

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Sign audit checkpoints every AUDIT_CHECKPOINT_INTERVAL_MINUTES, and at once when an "
        "Admin asks. The only process given AUDIT_CHECKPOINT_KEY; it writes checkpoints.jsonl."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="sign one checkpoint and stop")
        parser.add_argument(
            "--tick", type=float, default=1.0, help="seconds between looks for a request"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key = settings.AUDIT_CHECKPOINT_KEY
        if not key:
            raise CommandError("AUDIT_CHECKPOINT_KEY must be set for the checkpoint signer.")
        if options["once"]:
            self._sign(key)
            return
        stop = False

        def request_stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        interval = settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60
        last: float | None = None
        while not stop:
            try:
                close_old_connections()
                cp = audit_checkpoint_sign_due(key=key, last_signed=last, interval_seconds=interval)
                if cp is not None:
                    last = time.monotonic()
                    self._report(cp)
            except Exception:
                # PostgreSQL or Redis away: try again on the next tick, never give up.
                logger.exception("checkpoint signing failed; trying again")
                close_old_connections()
                time.sleep(5)
            time.sleep(options["tick"])

    def _sign(self, key: str) -> None:
        self._report(audit_checkpoint_issue(key=key))

    def _report(self, cp: AuditCheckpoint) -> None:
        self.stdout.write(f"checkpoint {cp.pk}: seq {cp.last_seq} head {cp.head_hash[:16]}…")
