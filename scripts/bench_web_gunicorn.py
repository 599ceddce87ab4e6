"""Gunicorn settings for `make bench-web`: console/gunicorn_config.py as production runs it, plus
two hooks that record each request's server-side cost.

Not run on its own: scripts/bench_web.py starts gunicorn with this file instead of the
production one and sets BENCH_WEB_SERVER_SAMPLES to a directory. Each worker process appends
one JSON line per request to its own file there: the Locust name (the X-Bench-Name header),
the status, the time from the hook before the request to the hook after it (wall and the
thread's own CPU), and the database queries the request made and their time. CPU and queries
per request hardly depend on how busy the shared machine is, so they show an improvement
that the latency figures, taken under load, may hide.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

_production = Path(__file__).resolve().parents[1] / "console" / "gunicorn_config.py"
# The production settings, unchanged: the benchmark measures what `make serve` runs.
exec(compile(_production.read_text(), str(_production), "exec"))  # noqa: S102

_samples = os.environ.get("BENCH_WEB_SERVER_SAMPLES", "")
_local = threading.local()
_write_lock = threading.Lock()


class _QueryCounter:
    """A database execute wrapper (Django's hook around every query) counting and timing."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


def pre_request(worker: Any, req: Any) -> None:
    """Runs in the thread that then serves the request (gthread), so the thread's connection
    is the one the request uses."""
    if not _samples:
        return
    from django.db import connection

    counter = _QueryCounter()
    connection.execute_wrappers.append(counter)
    _local.state = (counter, time.perf_counter(), time.thread_time())


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    state = getattr(_local, "state", None)
    if not _samples or state is None:
        return
    from django.db import connection

    counter, wall, cpu = state
    _local.state = None
    if counter in connection.execute_wrappers:
        connection.execute_wrappers.remove(counter)
    line = json.dumps(
        {
            "name": environ.get("HTTP_X_BENCH_NAME", ""),
            "status": getattr(resp, "status_code", 0),
            "ms": (time.perf_counter() - wall) * 1000,
            "cpu_ms": (time.thread_time() - cpu) * 1000,
            "queries": counter.count,
            "db_ms": counter.seconds * 1000,
        }
    )
    with _write_lock, (Path(_samples) / f"{os.getpid()}.jsonl").open("a") as out:
        out.write(line + "\n")
