import logging
import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

from catalogs.services import catalog_sort_indexes_ensure_all

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Build the sort indexes of every mirrored catalog's fields, as the schema owner "
        "(DATABASE_OWNER_URL). The web and the workers are not given that login; this "
        "command is the only place indexes are made. --every N repeats it every N seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, default=0, help="repeat every this many seconds (0: once)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using = "owner" if "owner" in connections.databases else DEFAULT_DB_ALIAS
        if options["every"] <= 0:
            self._run(using)
            return
        stop = False

        def request_stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        next_run = 0.0
        while not stop:
            if time.monotonic() >= next_run:
                try:
                    self._run(using)
                except Exception:
                    # PostgreSQL away or a build refused: the next round tries again.
                    logger.exception("building catalog sort indexes failed")
                next_run = time.monotonic() + options["every"]
            time.sleep(0.5)

    def _run(self, using: str) -> None:
        close_old_connections()
        built = catalog_sort_indexes_ensure_all(using=using)
        self.stdout.write(f"sort indexes ensured: {len(built)}")
