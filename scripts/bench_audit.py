"""Audit trail benchmark: list latency, export rate and memory, verify rate over N entries.

Run through `make bench-audit` (a throw-away PostgreSQL, like scripts/test), e.g.
`make bench-audit N=10000000`. Prints each figure beside its target (issue 24) and the
baseline measured before the work on them, with the ratio (at least 1.00: the target is met).
It is a measurement, not a test; on a shared machine the load average printed with the
figures says how far to trust them.
"""

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from console.audit import hashing  # noqa: E402
from console.audit.models import AuditEntry  # noqa: E402
from console.audit.services import audit_checkpoint_issue  # noqa: E402
from console.audit.verify import audit_verify  # noqa: E402
from console.roles import Role  # noqa: E402

ACTIONS = [
    "auth.sign_in",
    "auth.sign_out",
    "auth.sign_in_failed",
    "change_request.proposed",
    "change_request.approved",
    "change_request.applying",
    "change_request.applied",
    "change_request.failed",
    "change_request.rejected",
    "change_request.edited",
    "braze.write",
    "audit.exported",
    "policy.changed",
    "drift.detected",
]
OUTCOMES = ["success"] * 8 + ["failure", "refused"]
COPY_COLUMNS = (
    "seq, occurred_at, actor_id, actor_name, actor_roles, ip, user_agent, via, action,"
    " resource_type, resource_id, change_request_id, outcome, data, personal_digest,"
    " prev_hash, hash"
)


# Issue 24's targets, and main's figures before the work on them (6e76d08 with this script,
# N=1,000,000, load average 8.6-9.5 on the shared 2-core machine; on a quiet machine the
# issue measured 28,700 rows/s and 84 MB for the export and 10.9 s for verify).
TARGETS = {
    "list_p95_ms": 50.0,
    "export_rows_s": 100_000.0,
    "export_mb": 200.0,
    "verify_entries_s": 250_000.0,
}
BASELINE = {
    "list_p95_ms": 1461.7,
    "search_p95_ms": 1615.3,
    "export_rows_s": 9957.3,
    "export_mb": 87.3,
    "verify_entries_s": 37435.9,
    # From CPU time (see BackendCpu): main at 2f6773b, the round after the figures above,
    # N=1,000,000, load average 17-24.
    "list_cpu_p95_ms": 44.0,
    "search_cpu_p95_ms": 33.4,
    "export_cpu_rows_s": 85677.4,
    "verify_cpu_entries_s": 105188.6,
}


def figure(name: str, value: float, unit: str, target_key: str, higher_is_better: bool) -> None:
    """One figure with its target, the ratio to it (>= 1.00 meets it) and the baseline."""
    target = TARGETS[target_key]
    ratio = value / target if higher_is_better else (target / value if value else float("inf"))
    before = BASELINE.get(name) or BASELINE.get(target_key) or 0.0
    sign = ">=" if higher_is_better else "<="
    print(
        f"  {name:<18} {value:>12,.1f} {unit:<10} target {sign} {target:>10,.0f}  "
        f"ratio {ratio:5.2f}  {'MET' if ratio >= 1 else 'not met':<7}  "
        f"baseline {before:>10,.1f}"
    )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving connections named `name`, the
    application_name libpq takes from PGAPPNAME (set for the processes measured), read from
    /proc/<pid>/schedstat every 50 ms until stop(); a backend's counter starts at zero.

    Only those backends: autovacuum or another session's work on the same server stays out.
    """

    def __init__(self, name: str) -> None:
        self.name, self.seen, self.done = name, dict[int, int](), threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        try:
            while True:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE application_name = %s AND pid <> pg_backend_pid()",
                        [self.name],
                    )
                    pids = [row[0] for row in cursor.fetchall()]
                for pid in pids:
                    try:
                        used = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
                    except OSError:  # ended meanwhile
                        continue
                    self.seen[pid] = max(used, self.seen.get(pid, 0))
                if self.done.wait(0.05):
                    return
        finally:
            connection.close()

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        return sum(self.seen.values()) / 1e9


def console_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended (export, verify workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def mb(kilobytes: int) -> float:
    return kilobytes / 1024  # ru_maxrss is in KiB on Linux


def load(n: int) -> float:
    """Generate n chained entries and COPY them in (the real hash, so verify can run)."""
    rng = random.Random(42)
    chain = hashing.chain_hasher(settings.AUDIT_CHAIN_KEY)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(seq), 0), coalesce(max(hash), '') FROM audit_entry")
        last_seq, _ = cursor.fetchone()
        if last_seq:
            cursor.execute("SELECT hash FROM audit_entry WHERE seq = %s", [last_seq])
            prev = cursor.fetchone()[0]
        else:
            prev = hashing.GENESIS_HASH
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        step = timedelta(days=300) / max(n, 1)
        # Indexes not behind a constraint are built once after the load: maintaining
        # eleven of them row by row made a 10M load take most of an hour.
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = 'audit_entry'::regclass"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection
        with raw.cursor().copy(f"COPY audit_entry ({COPY_COLUMNS}) FROM STDIN") as copy:
            for i in range(n):
                seq = last_seq + i + 1
                action = ACTIONS[rng.randrange(len(ACTIONS))]
                actor = rng.randrange(50)
                cr = rng.randrange(1, 20000) if action.startswith(("change", "braze")) else None
                fields = {
                    "seq": seq,
                    "occurred_at": t0 + step * i,
                    "actor_id": actor + 1,
                    "actor_name": f"user{actor:02d}",
                    "actor_roles": "Editor",
                    "ip": f"10.0.{actor}.{rng.randrange(1, 250)}",
                    "user_agent": "bench",
                    "via": "web",
                    "action": action,
                    "resource_type": "catalog_item" if cr else "",
                    "resource_id": f"products/sku-{rng.randrange(100000):06d}" if cr else "",
                    "change_request_id": cr,
                    "outcome": OUTCOMES[rng.randrange(len(OUTCOMES))],
                    "data": {"i": i, "note": "benchmark"},
                    "personal_digest": "",
                }
                new_hash = chain(prev, hashing.entry_content(**fields))
                copy.write_row(
                    [
                        *list(fields.values())[:13],
                        hashing.canonical_json(fields["data"]),
                        "",
                        prev,
                        new_hash,
                    ]
                )
                prev = new_hash
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("ANALYZE audit_entry")
    audit_checkpoint_issue()
    return time.monotonic() - started


def auditor_client() -> Client:
    from django.contrib.auth.models import User

    from console.roles import user_roles_assign

    user, _ = User.objects.get_or_create(username="bench-auditor")
    user_roles_assign(user=user, roles={Role.AUDITOR})
    client = Client()
    client.force_login(user)
    return client


def list_latency(
    requests: int, profile: bool = False, search_only: bool = False
) -> tuple[list[float], list[float], list[float], list[float]]:
    client = auditor_client()
    rng = random.Random(7)
    url = reverse("audit:list")
    max_seq = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 1
    filters: list[Callable[[], dict[str, str | int]]] = [
        lambda: {},
        lambda: {"action": rng.choice(ACTIONS)},
        lambda: {"actor": f"user{rng.randrange(50):02d}"},
        lambda: {"outcome": rng.choice(["failure", "refused"])},
        lambda: {"change_request": rng.randrange(1, 20000)},
        lambda: {"resource": f"products/sku-{rng.randrange(100000):06d}"},
        lambda: {"date_from": "2026-03-01", "date_to": "2026-03-03"},
        lambda: {"action": "braze", "outcome": "failure"},
        lambda: {"q": "sign_in"},  # a common term: the newest matches come first
        lambda: {"q": f"sku-{rng.randrange(100000):06d}"},  # a rare one
        lambda: {"q": f"sku-{rng.randrange(10000):04d}"},  # a few hundred matches
        lambda: {"q": f"absent-{rng.randrange(10**6)}"},  # none at all: the worst case
        lambda: {"before": rng.randrange(1, max_seq)},
        lambda: {"actor": f"user{rng.randrange(50):02d}", "action": rng.choice(ACTIONS)},
    ]
    if search_only:  # --only search: the four kinds of term, in turn
        filters = [f for f in filters if "q" in f()]
    client.get(url)  # warm up (templates, connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        schedstat = Path(f"/proc/{cursor.fetchone()[0]}/schedstat")
    timings = []
    per_kind: dict[str, list[float]] = {}
    per_kind_cpu: dict[str, list[float]] = {}
    for i in range(requests):
        params = filters[i % len(filters)]()
        server_before = int(schedstat.read_text().split()[0])
        cpu_before = time.thread_time()
        started = time.perf_counter()
        if profile:
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                response = client.get(url, params)
            print(params)
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        else:
            response = client.get(url, params)
        timings.append((time.perf_counter() - started) * 1000)
        # The request's own CPU: the console's (this thread runs it) and its PostgreSQL
        # backend's; what the wall-clock time would be with nothing else on the machine.
        cpu = (time.thread_time() - cpu_before) * 1000
        cpu += (int(schedstat.read_text().split()[0]) - server_before) / 1e6
        kind = "+".join(sorted(params)) or "(none)"
        per_kind.setdefault(kind, []).append(timings[-1])
        per_kind_cpu.setdefault(kind, []).append(cpu)
        assert response.status_code == 200, (params, response.status_code)
    for kind, values in sorted(per_kind.items()):
        print(
            f"  {kind:<22} max {max(values):7.1f} ms over {len(values)} requests; "
            f"CPU max {max(per_kind_cpu[kind]):6.1f} ms"
        )
    return (
        timings,
        [t for k, v in per_kind.items() if "q" in k.split("+") for t in v],
        [t for v in per_kind_cpu.values() for t in v],
        [t for k, v in per_kind_cpu.items() if "q" in k.split("+") for t in v],
    )


def export_only() -> None:
    """Run in a child process so its peak RSS is the export's, not the loader's."""
    client = auditor_client()
    before = mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    started = time.monotonic()
    response = cast(StreamingHttpResponse, client.post(reverse("audit:export"), {"format": "csv"}))
    size = rows = 0
    for chunk in cast(Iterator[bytes], response.streaming_content):  # a sync stream
        size += len(chunk)
        rows += chunk.count(b"\n") if isinstance(chunk, bytes) else 0
    elapsed = time.monotonic() - started
    peak = mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    rows -= 1  # the header
    print(
        f"export: {rows} rows, {size / 1e6:.0f} MB of CSV in {elapsed:.1f}s; "
        f"peak RSS {peak:.0f} MB (before the export {before:.0f} MB)"
    )
    print(f"EXPORT {rows / elapsed:.1f} {peak:.1f} {rows}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=140)
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile each list request")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="load nothing when the database already holds N entries (scripts/bench-audit KEEP=)",
    )
    parser.add_argument("--load-only", action="store_true", help="load, then measure nothing")
    parser.add_argument(
        "--only",
        default="list,export,verify",
        help="what to measure, of list, export and verify (comma-separated); search: the"
        " list's searches alone (with --requests 8, two of each kind of term)",
    )
    args = parser.parse_args()
    setup_test_environment()
    if args.export_only:
        export_only()
        return
    held = AuditEntry.objects.count() if args.reuse else 0
    if held >= args.entries:
        print(f"reusing the {held:,} audit entries already loaded", flush=True)
    else:
        print(f"loading {args.entries - held:,} audit entries…", flush=True)
        print(f"load: {load(args.entries - held):.1f}s", flush=True)
    if args.load_only:
        return
    only = set(args.only.split(","))
    figures: list[tuple[str, float, str, str, bool]] = []
    cpu_figures: list[tuple[str, float, str, str, bool]] = []
    if only & {"list", "search"}:
        measure_list(args.requests, args.profile, figures, cpu_figures, "list" not in only)
    if "export" in only:
        measure_export(figures, cpu_figures)
    if "verify" in only:
        measure_verify(figures, cpu_figures)
    print(
        f"\naudit at {args.entries:,} entries (figure, target, ratio >= 1.00 meets it, baseline):"
    )
    for args_ in figures:
        figure(*args_)
    print(
        "the same from CPU time (what the machine would give with no other load; see BackendCpu):"
    )
    for args_ in cpu_figures:
        figure(*args_)
    print(load_average())


type Figures = list[tuple[str, float, str, str, bool]]


def measure_list(
    requests: int, profile: bool, figures: Figures, cpu_figures: Figures, search_only: bool
) -> None:
    timings, searches, cpu, search_cpu = list_latency(requests, profile, search_only)
    p95 = statistics.quantiles(timings, n=20)[-1]
    search_p95 = statistics.quantiles(searches, n=20)[-1] if len(searches) > 1 else max(searches)
    cpu_p95 = statistics.quantiles(cpu, n=20)[-1]
    search_cpu_p95 = statistics.quantiles(search_cpu, n=20)[-1]
    print(
        f"list page: {len(timings)} requests, p50 {statistics.median(timings):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(timings):.1f} ms; CPU per request (console and "
        f"PostgreSQL) p50 {statistics.median(cpu):.1f} ms, p95 {cpu_p95:.1f} ms; {load_average()}"
    )
    if not search_only:
        figures.append(("list_p95_ms", p95, "ms", "list_p95_ms", False))
    figures.append(("search_p95_ms", search_p95, "ms", "list_p95_ms", False))
    if not search_only:
        cpu_figures.append(("list_cpu_p95_ms", cpu_p95, "ms", "list_p95_ms", False))
    cpu_figures.append(("search_cpu_p95_ms", search_cpu_p95, "ms", "list_p95_ms", False))


def measure_export(figures: Figures, cpu_figures: Figures) -> None:
    console_before, backends = console_cpu_seconds(), BackendCpu("bench-export")
    child = subprocess.run(
        [sys.executable, __file__, "--export-only"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PGAPPNAME": "bench-export"},
    )
    export_console, export_pg = console_cpu_seconds() - console_before, backends.stop()
    lines = child.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith(("EXPORT", "{"))))
    printed = next(line for line in lines if line.startswith("EXPORT")).split()
    export_rate, export_mb, export_rows = float(printed[1]), float(printed[2]), int(printed[3])
    # The console and PostgreSQL work side by side (rows stream from one to the other), so
    # with a core each the slower of the two sets the pace.
    export_cpu_rate = export_rows / max(export_console, export_pg, 1e-9)
    print(
        f"export CPU: console {export_console:.1f}s, PostgreSQL {export_pg:.1f}s: "
        f"{export_cpu_rate:,.0f} rows per second of the busier; {load_average()}"
    )
    figures.append(("export_rows_s", export_rate, "rows/s", "export_rows_s", True))
    figures.append(("export_mb", export_mb, "MB peak", "export_mb", False))
    cpu_figures.append(("export_cpu_rows_s", export_cpu_rate, "rows/s", "export_rows_s", True))


def measure_verify(figures: Figures, cpu_figures: Figures) -> None:
    # The workers (spawned: they take the environment as it is now) name their connections.
    os.environ["PGAPPNAME"] = "bench-verify"
    console_before, backends = console_cpu_seconds(), BackendCpu("bench-verify")
    # Spawned workers import the main module again. manage.py's is a few lines behind its
    # __main__ guard; this script's sets up Django and the test client, a second or so per
    # worker that is the benchmark's cost, not verify_audit's: it is hidden from them.
    main = sys.modules["__main__"]
    main_file = main.__dict__.pop("__file__", None)
    started = time.monotonic()
    try:
        report = audit_verify()
    finally:
        main.__file__ = main_file
    elapsed = time.monotonic() - started
    verify_console, verify_pg = console_cpu_seconds() - console_before, backends.stop()
    cores = os.cpu_count() or 1
    # Workers and their backends all run at once: the machine's cores share the total.
    verify_cpu_rate = report.entries / max((verify_console + verify_pg) / cores, 1e-9)
    status = "verifies" if report.ok else f"FAILS: {report.problems[:3]}"
    print(f"verify_audit: {report.entries} entries in {elapsed:.1f}s, {status}; {load_average()}")
    print(
        f"verify CPU: console {verify_console:.1f}s, PostgreSQL {verify_pg:.1f}s: "
        f"{verify_cpu_rate:,.0f} entries per second with the {cores} cores to itself"
    )
    rate = report.entries / elapsed
    figures.append(("verify_entries_s", rate, "entries/s", "verify_entries_s", True))
    cpu_figures.append(
        ("verify_cpu_entries_s", verify_cpu_rate, "entries/s", "verify_entries_s", True)
    )


if __name__ == "__main__":
    main()
