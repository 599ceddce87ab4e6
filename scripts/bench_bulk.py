#!/usr/bin/env python3
"""Benchmark bulk catalog jobs end to end, with the Braze sandbox as referee.

Real pieces throughout: N Celery workers and beat as processes, PostgreSQL, a private Redis
(restarted in scenario E), the sandbox with its clock scaled by S, and the console's own
services for upload, parse, review and apply. Figures come from the sandbox's request log,
not from the console's counters (performance-and-bulk.md §6):

  U        items accepted per second in the server's full windows / ceiling (L·50/W')
  429s     the console's requests the sandbox refused
  peak     most requests counted in any server window (fixed and sliding) / L; once the
           console has learnt that the server counts fixed windows it fills each of them,
           so the sliding figure may pass 1 while the fixed one, the server's, stays <= 1
  lost     items of the job never in an accepted request
  re-sent  items accepted more than once by the referee; and the console's own count
  ETA err  |ETA shown at 10% done - actual remaining| / actual remaining

With an external consumer (D, G) it also prints, per limit group, the consumer's own 429s
(a steady client that never retries: the target is 0), the console's 429s, and the console's
requests per full server window ÷ the share it should leave itself: min(background share x L,
L - the consumer's rate - the yield margin x L). G runs a bulk job and a full catalog sync
while consumers take 25% of both groups (asynchronous and synchronous items).

The sandbox plays the reference profile (100/min asynchronous items, 50/min synchronous
items): limits this machine can saturate at the benchmark's clock. The console learns them
from X-RateLimit-Limit.

    scripts/bench-bulk [--scale 6] [--runs 3] [--items 50000] [--workers 4]
                       [--scenarios headroom,A,B,C,D,E,F,G,celery,parse] [--windows]

--windows also prints the console's requests in each server window of every run, and its
pauses of over a second between sends beside kills, restarts and the grid being learnt.
BRAZE_RATE_LIMIT_ALIGN=0 in the environment measures the sliding log alone.

Run through scripts/bench-bulk, which provides a throw-away PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GROUP = "catalog_items_async"
LIMIT, BATCH = 100, 50  # the reference profile's asynchronous item group
SYNC_GROUP, SYNC_LIMIT = "catalog_items_sync", 50
PROFILE = "reference"
# The console's policy for background work (console/settings.py): what a group's share is
# measured against when other clients use it too.
DEFAULT_SHARE = 0.7
IDLE_CALLS_EACH = 40  # scenario C: idle PATCHes and GETs before the job
# Issue 24, target 1: the console's CPU per accepted request in the headroom scenario, as
# measured on main before the send path was reworked (median of two runs, see the README),
# must fall five times, and the headroom scenario must send Braze's current asynchronous ceiling
# (16,000 requests a minute = 13,333 items/s) within reach: ≥ 10,000 items/s.
BASELINE_CPU_MS_PER_REQUEST = 34.7
HEADROOM_TARGET_ITEMS_S = 10_000


def _p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 2 else (xs[0] if xs else 0.0)


# --- processes --------------------------------------------------------------------------------


class Redis:
    def __init__(self, directory: Path) -> None:
        self.sock = directory / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}?db=0"

    def start(self) -> None:
        self.sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                "0",
                "--unixsocket",
                str(self.sock),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(200):
            if self.sock.exists():
                return
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


class Workers:
    """N Celery workers (one process each, concurrency 1) and beat, sharing one environment."""

    def __init__(
        self, n: int, env: dict[str, str], tmp: Path, profile_dir: Path | None = None
    ) -> None:
        self.n, self.env, self.tmp = n, env, tmp
        # When set, each worker runs in one process (solo pool) under cProfile, writing its
        # profile here when it stops.
        self.profile_dir = profile_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.beat: subprocess.Popen[bytes] | None = None
        self.peak_rss_kb = 0

    def _popen(self, args: list[str], profile: str = "") -> subprocess.Popen[bytes]:
        # CPU time, not wall time: on a shared machine a process waits for a core as often
        # as for an answer.
        prefix = (
            [
                "-c",
                "import cProfile,runpy,sys,time;p=cProfile.Profile(time.process_time);"
                "sys.argv=['celery',*sys.argv[1:]];p.enable()\n"
                "try:runpy.run_module('celery',run_name='__main__')\n"
                f"finally:p.disable();p.dump_stats({profile!r})",
            ]
            if profile
            else ["-m", "celery"]
        )
        return subprocess.Popen(
            [sys.executable, *prefix, "-A", "console", *args],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp / "workers.log").open("ab"),
        )

    def start_one(self, index: int) -> None:
        profile = ""
        if self.profile_dir is not None:
            profile = str(self.profile_dir / f"worker-{index}-{uuid.uuid4().hex[:6]}.prof")
        self.procs[index] = self._popen(
            [
                "worker",
                "--pool=solo" if profile else "--pool=prefork",
                "--concurrency=1",
                "-l",
                "warning",
                "-n",
                f"bench{index}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            profile,
        )

    def start(self) -> None:
        for index in range(self.n):
            self.start_one(index)
        schedule = self.tmp / f"beat-{uuid.uuid4().hex}"
        self.beat = self._popen(["beat", "-l", "warning", "--schedule", str(schedule)])
        time.sleep(4.0)  # workers import Django and connect

    def kill9(self, index: int) -> None:
        os.killpg(self.procs[index].pid, signal.SIGKILL)
        self.procs[index].wait()

    def sample_memory(self) -> None:
        for proc in self.procs.values():
            self.peak_rss_kb = max(self.peak_rss_kb, _tree_rss_kb(proc.pid))

    def stop(self) -> None:
        for proc in [*self.procs.values(), *([self.beat] if self.beat else [])]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.procs.values(), *([self.beat] if self.beat else [])]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs, self.beat = {}, None


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu() -> dict[int, tuple[int, float]]:
    """Every process: its parent and the CPU seconds it and its reaped children used."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        # After the command's closing parenthesis: state, ppid, … utime stime cutime cstime.
        fields = text[text.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICK)
    return table


def _tree_cpu(
    table: dict[int, tuple[int, float]], roots: list[int], exclude: frozenset[int] = frozenset()
) -> float:
    """CPU seconds of processes and all their descendants (a child that exits is in its
    parent's reaped-children counters, so the sum stays whole)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    total, stack, seen = 0.0, list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        if pid not in exclude:
            total += table[pid][1]
        stack.extend(children[pid])
    return total


class CpuMeter:
    """CPU seconds by process group over a run, from the processes' own counters: what the
    job costs the console, whatever else the shared machine's other sessions run meanwhile.

    console workers: the Celery workers (parent and pool child) and beat; PostgreSQL: the
    postmaster and every backend, but the bench's own (its progress polls, reported with the
    driver); Redis: redis-server; the sandbox apart (the referee, not the console).
    """

    GROUPS = ("workers", "postgres", "redis", "sandbox", "driver")

    def __init__(self, bench: Bench) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.own_backend = int(cursor.fetchone()[0])
        self.postmaster = _proc_cpu()[self.own_backend][0]
        self.bench = bench
        self.start: dict[str, float] = {}
        self.load_start = os.getloadavg()

    def snapshot(self) -> dict[str, float]:
        bench = self.bench
        assert bench.workers is not None
        assert bench.redis.proc is not None
        table = _proc_cpu()
        workers = [p.pid for p in bench.workers.procs.values()]
        if bench.workers.beat is not None:
            workers.append(bench.workers.beat.pid)
        mine = frozenset({self.own_backend})
        times = os.times()
        return {
            "workers": _tree_cpu(table, workers),
            "postgres": _tree_cpu(table, [self.postmaster], exclude=mine),
            "redis": _tree_cpu(table, [bench.redis.proc.pid]),
            "sandbox": _tree_cpu(table, [bench.sandbox.proc.pid]),
            "driver": times.user + times.system + _tree_cpu(table, [self.own_backend]),
        }

    def begin(self) -> None:
        self.load_start = os.getloadavg()
        self.start = self.snapshot()

    def end(self) -> dict[str, float]:
        now = self.snapshot()
        return {group: now[group] - self.start[group] for group in self.GROUPS}


def _pg_statements_reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cursor.execute("SELECT pg_stat_statements_reset()")


def _pg_statements_print(top: int = 15) -> None:
    """The statements that took PostgreSQL's time over the run, costliest first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT total_exec_time, calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'),"
            " 160) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s",
            [top],
        )
        rows = cursor.fetchall()
    print("PostgreSQL statements by total execution time (ms, calls, rows):", flush=True)
    for total, calls, nrows, query in rows:
        print(f"  {total:9.1f} {calls:7d} {nrows:8d}  {query}", flush=True)


def _tree_rss_kb(pid: int) -> int:
    """The largest RSS of one worker process (parent or pool child)."""
    best = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().split()
            if int(entry.name) != pid and int(stat[3]) != pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return best


# --- the console side -------------------------------------------------------------------------


def write_csv(path: Path, ids: list[str], seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,category,price,stock,in_stock,color\n")
        for item_id in ids:
            out.write(
                f"{item_id},Item {item_id},{rng.choice(['shoes', 'bags', 'hats'])},"
                f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d},{rng.randint(0, 900)},"
                f"{rng.choice(['true', 'false'])},{rng.choice(['red', 'navy', 'sand'])}\n"
            )


def make_job(path: Path, operation: str = "upsert") -> Any:
    from django.contrib.auth.models import User
    from django.core.files import File

    from catalog_bulk.models import BulkJob, JobState
    from catalog_bulk.services import bulk_job_upload
    from catalogs.models import Catalog

    editor = User.objects.get(username="editor")
    with path.open("rb") as handle:
        job = bulk_job_upload(
            actor=editor,
            catalog=Catalog.objects.get(name="products"),
            operation=operation,
            upload=File(handle, name=path.name),
        )
    # A worker parses it (eagerly in this process when CELERY_TASK_ALWAYS_EAGER is set).
    while (job := BulkJob.objects.get(pk=job.pk)).state == JobState.PARSING:
        time.sleep(0.2)
    return job


def approve(job: Any) -> float:
    """Submit and approve; the apply task (on a worker) starts the job. Returns the time."""
    from django.contrib.auth.models import User

    from catalog_bulk.services import bulk_job_propose
    from console.changes.services import change_request_approve

    cr = bulk_job_propose(actor=User.objects.get(username="editor"), job=job)
    started = time.time()
    change_request_approve(actor=User.objects.get(username="reviewer"), change_request=cr)
    return started


class Watch:
    """Polls jobs until done; records the ETA shown at 10% and worker memory."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.approve_cpu = 0.0
        self.eta_at_10: dict[int, tuple[float, float]] = {}
        self.done_at: dict[int, float] = {}
        self.first_accept: dict[int, float] = {}

    def until_done(
        self, jobs: list[Any], timeout: float, during: Callable[[float], None] | None = None
    ) -> None:
        from catalog_bulk.models import BulkJob, JobState
        from catalog_bulk.selectors import bulk_job_progress

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = False
            for job in jobs:
                if job.pk in self.done_at:
                    continue
                fresh = BulkJob.objects.get(pk=job.pk)
                if fresh.state in (JobState.DONE, JobState.CANCELLED):
                    self.done_at[job.pk] = time.time()
                    continue
                pending = True
                progress = bulk_job_progress(job=fresh)
                if progress.items_done and job.pk not in self.first_accept:
                    self.first_accept[job.pk] = time.time()
                total = max(progress.items_total, 1)
                if (
                    job.pk not in self.eta_at_10
                    and progress.items_done >= total / 10
                    and progress.eta_seconds is not None
                ):
                    self.eta_at_10[job.pk] = (time.time(), progress.eta_seconds)
                if during:
                    during(progress.items_done / total)
            self.workers.sample_memory()
            if not pending:
                return
            time.sleep(0.25)
        from django.db.models import Count

        from catalog_bulk.models import BulkBatch

        states = {
            job.pk: (
                BulkJob.objects.get(pk=job.pk).state,
                dict(
                    BulkBatch.objects.filter(job=job).values_list("state").annotate(n=Count("id"))
                ),
            )
            for job in jobs
        }
        errors = set(
            BulkBatch.objects.exclude(error_message="").values_list("error_message", flat=True)[:5]
        )
        raise RuntimeError(f"the job did not finish in time: {states} {errors}")

    def eta_error(self, job: Any) -> float | None:
        if job.pk not in self.eta_at_10 or job.pk not in self.done_at:
            return None
        at, eta = self.eta_at_10[job.pk]
        actual = self.done_at[job.pk] - at
        return abs(eta - actual) / actual if actual > 0 else None


# --- figures ----------------------------------------------------------------------------------


def figures(
    sandbox: Any, since: float, until: float, ids: set[str], scale: float
) -> dict[str, Any]:
    stats = sandbox.admin.group_stats(GROUP, since=since, until=until + 0.5)
    window = 60.0 / scale
    ceiling = LIMIT * BATCH / window
    x = stats.get("items_accepted_per_second_in_full_windows") or 0.0
    accepted: dict[str, int] = {}
    # D's pass line: an episode must not repeat. Requests already on their way when the first
    # 429 came back are that episode; a 429 to one that arrived over 50 ms after an earlier
    # 429 was answered, in the same window, means the block was not kept.
    repeated, last_429 = 0, None
    log = sorted(
        sandbox.admin.log(since=since, until=until + 0.5, group=GROUP), key=lambda e: e["t"]
    )
    for entry in log:
        if entry.get("external"):
            continue
        if entry["status"] == 429:
            if (
                last_429 is not None
                and entry["t"] > last_429["t_end"] + 0.05
                and math.floor(entry["t"] / window) == math.floor(last_429["t"] / window)
            ):
                repeated += 1
            last_429 = entry
        if not 200 <= entry["status"] < 300:
            continue
        for item_id in entry.get("item_ids") or []:
            accepted[item_id] = accepted.get(item_id, 0) + 1
    return {
        "U": x / ceiling,
        # Background work takes at most its share of the group (console/settings.py).
        "U_share": x / ceiling / background_share(),
        "429": stats.get("rate_limited", 0),
        "429_repeated": repeated,
        "peak_fixed": (stats.get("peak_requests_in_fixed_window") or 0) / LIMIT,
        "peak_sliding": (stats.get("peak_requests_in_sliding_window") or 0) / LIMIT,
        "lost": len(ids - set(accepted)),
        "resent_referee": sum(1 for i in ids if accepted.get(i, 0) > 1),
        "full_windows": stats.get("full_windows", 0),
        "per_window": [w["own_counted"] for w in stats.get("windows", [])],
    }


def background_share() -> float:
    from django.conf import settings

    config: Mapping[str, Any] = settings.BRAZE_RATE_LIMITS
    return float(config.get("background_share", DEFAULT_SHARE))


def neighbour_figures(
    sandbox: Any,
    group: str,
    limit: int,
    since: float,
    until: float,
    scale: float,
) -> dict[str, Any]:
    """The consumer's and the console's 429s, and the console's rate ÷ the share it should
    leave itself, in the server's full windows between ``since`` and ``until``.

    The share is the limiter's own rule (``console.braze.limiter.background_room``), per
    window, with what the consumer was counted sending in that window: requests are whole,
    so the margin is too (at L = 50 a 5% margin keeps 3 free, not 2.5).
    """
    from console.braze.limiter import background_room

    stats = sandbox.admin.group_stats(group, since=since, until=until + 0.5)
    window = 60.0 / scale
    full = [
        w for w in stats.get("windows", []) if w["start"] >= since and w["start"] + window <= until
    ]
    limits = _limits()
    share = background_share()
    own = [w["own_counted"] for w in full]
    others = [w["counted"] - w["own_counted"] for w in full]
    shares = [
        background_room(limit, share=share, others=o, margin=limits.yield_margin) for o in others
    ]
    return {
        "ext_429": stats.get("external_rate_limited", 0),
        "own_429": stats.get("rate_limited", 0),
        "own_share": sum(shares) / len(shares) if shares else None,
        "rate_per_share": sum(own) / sum(shares) if shares and sum(shares) else None,
        "neighbour_windows": len(full),
        "per_window_own": own,
        "per_window_others": others,
        "per_window_share": shares,
    }


def _limits() -> Any:
    from console.braze.limiter import limits_from_settings

    return limits_from_settings()


def console_resends(job: Any) -> int:
    from catalog_bulk.models import BulkRow

    return BulkRow.objects.filter(job=job, resends__gt=0).count()


def _parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _process_cpu(pid: int, *, children: bool = False) -> float:
    """A process's CPU seconds (user + system), with its reaped children's if asked."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _cluster_cpu(postmaster: int) -> float:
    """CPU seconds of a PostgreSQL cluster: the postmaster, its exited backends and the live
    ones (walwriter, checkpointer, every connection)."""
    total = _process_cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent_pid(int(entry.name)) == postmaster:
                    total += _process_cpu(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return total


def parse_child(path: str, profile: bool) -> None:
    """The parse scenario's child: one eager parse, then its figures as a JSON line."""
    import resource

    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    backend_before = _process_cpu(backend)
    # The parse's own CPU: Django's start-up is no part of it.
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        job = prof.runcall(make_job, Path(path))
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        job = make_job(Path(path))
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts = (
        f"{job.n_create:,} create, {job.n_update:,} update, {job.n_unchanged:,} unchanged, "
        f"{job.n_error:,} error"
    )
    print(
        json.dumps(
            {
                "rows": job.rows_read,
                "seconds": seconds,
                "state": job.state,
                "counts": counts,
                "cpu": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
                "pg_cpu": _process_cpu(backend) - backend_before,
                "rss_mb": usage.ru_maxrss / 1024,
            }
        )
    )


def summary(values: list[float | None], fmt: str = "{:.3f}") -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    return (
        f"{fmt.format(statistics.median(vals))} [{fmt.format(min(vals))}–{fmt.format(max(vals))}]"
    )


# --- the bench ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
        self.redis = Redis(self.tmp)
        self.sandbox: Any = None
        self.workers: Workers | None = None
        self.seq = 0
        self.rng = random.Random(args.seed)
        self.events: list[tuple[float, str]] = []  # (time, what): kills, restarts
        self.watch_groups = [GROUP]  # groups whose learnt grid --windows reports

    # environment -------------------------------------------------------------------------------

    def env(self, *, limiter_off: bool = False) -> dict[str, str]:
        s = self.args.scale
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": f"redis+socket://{self.redis.sock}",
            "BRAZE_REST_ENDPOINT": self.sandbox.url,
            "BRAZE_API_KEY": self.sandbox.api_key,
            "BRAZE_RATE_LIMIT_WORKSPACE": self.workspace,
            "BRAZE_RATE_LIMIT_CLOCK_SCALE": str(s),
            # Arrival jitter margin: 0.2 s per 10 s window, scaled with the window.
            "BRAZE_RATE_LIMIT_MARGIN_SECONDS": str(round(1.2 / s, 3)),
            "BRAZE_CONNECT_TIMEOUT": "2",
            "BRAZE_READ_TIMEOUT": "5",
            "BULK_SENDERS": str(self.args.workers),
            "BULK_SWEEP_SECONDS": "1",
            "BULK_SENDER_TTL": "3",
            "BULK_BACKOFF_BASE": str(1.0 / s),
            "BULK_BACKOFF_CAP": str(60.0 / s),
            # A job's read-back (5 min later) reads on the single-item group, which scenario C
            # measures: off, so each scenario's figures are its own.
            "BULK_READBACK_SAMPLE": "0",
            "MEDIA_ROOT": str(self.tmp / "media"),
            "AUDIT_CHECKPOINT_DIR": str(self.tmp / "checkpoints"),
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        }
        if limiter_off:
            env["BRAZE_RATE_LIMIT_OVERRIDES"] = f"{GROUP}=1000000/60"
        return env

    def restart_workers(self, profile_dir: Path | None = None, **env_options: Any) -> Workers:
        peak = 0
        if self.workers:
            self.workers.stop()
            peak = self.workers.peak_rss_kb
        self.workspace = f"bench-{uuid.uuid4().hex[:8]}"
        # This process reads the job's ETA from the workers' limiter (the limit it learnt).
        from django.conf import settings

        settings.BRAZE_RATE_LIMITS = {**settings.BRAZE_RATE_LIMITS, "workspace": self.workspace}
        self.workers = Workers(
            self.args.workers, self.env(**env_options), self.tmp, profile_dir=profile_dir
        )
        self.workers.peak_rss_kb = peak
        self.workers.start()
        return self.workers

    def reset_sandbox(
        self, algorithm: str = "fixed", limits: bool = True, products: int = 100, store: bool = True
    ) -> None:
        self.sandbox.admin.reset(products=products, profile=PROFILE)
        self.sandbox.admin.configure(
            clock_scale=self.args.scale,
            algorithm=algorithm,
            async_delay_seconds=3600.0,
            rate_limits_enabled=limits,
            store_items=store,
        )

    def new_ids(self, n: int) -> list[str]:
        self.seq += 1
        return [f"b{self.seq}-{i:06d}" for i in range(n)]

    def job_file(self, n: int) -> tuple[Path, list[str]]:
        ids = self.new_ids(n)
        path = self.tmp / f"job-{self.seq}.csv"
        write_csv(path, ids, self.args.seed + self.seq)
        return path, ids

    # one run -----------------------------------------------------------------------------------

    def run_jobs(
        self,
        sizes: list[int],
        *,
        during: Callable[[float], None] | None = None,
        meter: CpuMeter | None = None,
    ) -> tuple[list[Any], list[set[str]], float, float, Watch]:
        jobs, id_sets = [], []
        for n in sizes:
            path, ids = self.job_file(n)
            jobs.append(make_job(path))
            id_sets.append(set(ids))
        assert self.workers is not None
        watch = Watch(self.workers)
        if meter is not None:
            meter.begin()
        cpu = time.process_time()
        since = min(approve(job) for job in jobs)
        # The approval is what the web process does for the job.
        watch.approve_cpu = time.process_time() - cpu
        ceiling_s = sum(sizes) / (LIMIT * BATCH / (60.0 / self.args.scale))
        timeout = float(os.environ.get("BENCH_JOB_TIMEOUT", ceiling_s * 4 + 120))
        watch.until_done(jobs, timeout=timeout, during=during)
        until = max(watch.done_at.values())
        return jobs, id_sets, since, until, watch

    def single(
        self, label: str, *, during: Callable[[float], None] | None = None
    ) -> dict[str, Any]:
        import dataclasses

        import redis

        from console.braze.limiter import RateLimiter, limits_from_settings

        # The workers' limiter (their workspace changes with each restart), to watch the grid.
        watcher = RateLimiter(
            redis_client=redis.Redis(unix_socket_path=str(self.redis.sock), socket_timeout=1),
            limits=dataclasses.replace(limits_from_settings(), workspace=self.workspace),
        )
        aligned = dict.fromkeys(self.watch_groups, False)
        others = dict.fromkeys(self.watch_groups, 0)
        self.events = []

        def watch_grid(fraction: float) -> None:
            for group in self.watch_groups:
                try:
                    now_aligned = watcher.aligned(group=group)
                except redis.RedisError:
                    now_aligned = aligned[group]
                if now_aligned != aligned[group]:
                    aligned[group] = now_aligned
                    what = "grid learnt" if now_aligned else "grid gone"
                    self.events.append((time.time(), f"{what} ({group})"))
                if self.args.windows and group != GROUP:
                    try:
                        seen = watcher.usage(group=group).others
                    except redis.RedisError:
                        seen = others[group]
                    if seen != others[group]:
                        others[group] = seen
                        self.events.append((time.time(), f"others seen {seen} ({group})"))
            if during:
                during(fraction)

        jobs, ids, since, until, watch = self.run_jobs([self.args.items], during=watch_grid)
        result = figures(self.sandbox, since, until, ids[0], self.args.scale)
        if self.args.windows:
            print(f"    {label}: requests per server window", *result["per_window"], flush=True)
            self.print_gaps(since, until)
        result["resent_console"] = console_resends(jobs[0])
        result["eta_err"] = watch.eta_error(jobs[0])
        result["seconds"] = until - since
        result["since"], result["until"] = since, until
        return result

    def print_gaps(
        self, since: float, until: float, *, group: str = GROUP, pause: float = 1.0
    ) -> None:
        """Pauses of over ``pause`` seconds between the console's sends, beside the run's
        events."""
        window = 60.0 / self.args.scale
        first = math.floor(since / window)
        entries = self.sandbox.admin.log(since=since, until=until + 0.5, group=group)
        times = sorted(e["t"] for e in entries if not e.get("external"))
        marks = [(t, what) for t, what in self.events if since <= t <= until + 0.5]
        marks += [
            (a, f"no send for {b - a:.1f} s from")
            for a, b in itertools.pairwise(times)
            if b - a > pause
        ]
        for t, text in sorted(marks):
            print(
                f"      {text} +{t - since:.1f} s (window {math.floor(t / window) - first}, "
                f"{t % window:.1f} s in)",
                flush=True,
            )

    def print_call_parts(self, calls: list[tuple[str, bool, float, float, float]]) -> None:
        """Where a call's time goes: before the sandbox handles it, in it, and after."""
        ours = ("/catalogs/products/items/sku-000001", "/catalogs/products/items/sku-000002")
        log = sorted(
            (
                e
                for e in self.sandbox.admin.log(since=calls[0][2] - 0.1, group="catalog_items_sync")
                if e["path"].split("?")[0] in ours
            ),
            key=lambda e: e["t"],
        )
        if len(log) != len(calls):
            statuses = collections.Counter(e["status"] for e in log)
            print(
                f"      call parts: {len(log)} logged for {len(calls)} calls {dict(statuses)}",
                flush=True,
            )
            return
        for busy in (False, True):
            pairs = [(c, e) for c, e in zip(calls, log, strict=True) if c[1] is busy]
            before = [e["t"] - c[2] for c, e in pairs]
            inside = [e["t_end"] - e["t"] for _c, e in pairs]
            after = [c[3] - e["t_end"] for c, e in pairs]
            print(
                f"      call parts {'during' if busy else 'idle'} p95: before the sandbox "
                f"{_p95(before) * 1000:.1f} ms, in it {_p95(inside) * 1000:.1f} ms, after "
                f"{_p95(after) * 1000:.1f} ms",
                flush=True,
            )

    # scenarios ----------------------------------------------------------------------------------

    def headroom(self) -> list[dict[str, Any]]:
        # The console alone: no limits, and the sandbox accepts, checks and logs each request
        # without storing its items (its log stays the referee of what was accepted).
        self.reset_sandbox(limits=False, store=not self.args.sandbox_store)
        profile_dir = Path(self.args.profile_workers) if self.args.profile_workers else None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        self.restart_workers(limiter_off=True, profile_dir=profile_dir)
        meter = CpuMeter(self)
        if self.args.pg_statements:
            _pg_statements_reset()
        _jobs, ids, since, until, watch = self.run_jobs([self.args.items], meter=meter)
        cpu = meter.end()
        if self.args.pg_statements:
            _pg_statements_print()
        load = os.getloadavg()
        stats = self.sandbox.admin.group_stats(GROUP, since=since, until=until + 0.5)
        ceiling = LIMIT * BATCH / (60.0 / self.args.scale)
        achieved = len(ids[0]) / max(until - since, 1e-9)
        steady = stats.get("items_accepted_per_second_in_full_windows") or achieved
        h = max(steady, achieved) / ceiling
        self.machine_bound = h < 3
        print(
            f"headroom: limits off, {achieved:,.0f} items/s over the job, steady "
            f"{steady:,.0f} items/s = H {h:.2f} × scaled ceiling {ceiling:,.0f} items/s "
            f"-> {'OK' if h >= 3 else 'MACHINE-BOUND (H < 3)'}; "
            f"{achieved / HEADROOM_TARGET_ITEMS_S:.2f} × the {HEADROOM_TARGET_ITEMS_S:,} "
            f"items/s target ({'OK' if achieved >= HEADROOM_TARGET_ITEMS_S else 'BELOW'})",
            flush=True,
        )
        accepted = sum(
            1
            for e in self.sandbox.admin.log(since=since, until=until + 0.5, group=GROUP)
            if 200 <= e["status"] < 300 and not e.get("external")
        )
        per = max(accepted, 1)
        console = cpu["workers"] + cpu["postgres"] + cpu["redis"] + watch.approve_cpu
        ms = console * 1000 / per
        target = BASELINE_CPU_MS_PER_REQUEST / 5
        print(
            f"headroom CPU per accepted {BATCH}-item request ({accepted:,} requests, "
            f"{until - since:.1f} s): console {ms:.2f} ms = workers and beat "
            f"{cpu['workers'] * 1000 / per:.2f} + PostgreSQL {cpu['postgres'] * 1000 / per:.2f}"
            f" + Redis {cpu['redis'] * 1000 / per:.2f} + web (approve) "
            f"{watch.approve_cpu * 1000 / per:.2f}; apart: sandbox "
            f"{cpu['sandbox'] * 1000 / per:.2f}, bench driver (polls) "
            f"{cpu['driver'] * 1000 / per:.2f}; baseline {BASELINE_CPU_MS_PER_REQUEST:.2f} ms "
            f"-> {BASELINE_CPU_MS_PER_REQUEST / ms:.2f}× lower (target ≥ 5×: ≤ {target:.2f} ms, "
            f"{'OK' if ms <= target else 'NOT YET'}); one core of console CPU sends "
            f"{BATCH * 1000 / ms:,.0f} items/s, so {HEADROOM_TARGET_ITEMS_S:,} items/s takes "
            f"{HEADROOM_TARGET_ITEMS_S * ms / BATCH / 1000:.1f} cores; load average "
            f"{meter.load_start[0]:.2f} at start, {load[0]:.2f} at end",
            flush=True,
        )
        self.restart_workers()
        if profile_dir is not None:
            import pstats

            # The sender tasks' CPU time, heaviest first (the workers wrote their profiles as
            # they stopped; the files stay in the directory for a closer look).
            stats = pstats.Stats(*map(str, sorted(profile_dir.glob("worker-*.prof"))))
            stats.sort_stats("cumulative").print_callees("sender_step")
            stats.sort_stats("tottime").print_stats(25)
        return [{"H": h, "cpu_ms": ms, "items_s": achieved}]

    def scenario(self, name: str) -> list[dict[str, Any]]:
        runs = []
        for run in range(self.args.runs):
            runs.append(getattr(self, f"s_{name}")(run))
        return runs

    def s_A(self, run: int, algorithm: str = "fixed") -> dict[str, Any]:
        self.reset_sandbox(algorithm)
        return self.single("A")

    def s_F_sliding(self, run: int) -> dict[str, Any]:
        return self.s_A(run, "sliding")

    def s_F_token(self, run: int) -> dict[str, Any]:
        return self.s_A(run, "token")

    def s_B(self, run: int) -> dict[str, Any]:
        self.reset_sandbox()
        half = self.args.items // 2
        jobs, ids, since, until, watch = self.run_jobs([half, half])
        result = figures(self.sandbox, since, until, ids[0] | ids[1], self.args.scale)
        # Fairness while both ran: items each job had accepted when the first finished.
        first_done = min(watch.done_at.values())
        rates = []
        for job_ids in ids:
            n = 0
            for entry in self.sandbox.admin.log(since=since, until=first_done, group=GROUP):
                if 200 <= entry["status"] < 300 and not entry.get("external"):
                    n += sum(1 for i in entry.get("item_ids") or [] if i in job_ids)
            rates.append(n / max(first_done - since, 1e-9))
        result["jain"] = sum(rates) ** 2 / (len(rates) * sum(r * r for r in rates) or 1)
        result["resent_console"] = sum(console_resends(j) for j in jobs)
        result["eta_err"] = watch.eta_error(jobs[0])
        return result

    def s_C(self, run: int) -> dict[str, Any]:
        from console.braze import close_client, get_client

        self.reset_sandbox()
        close_client()
        client = get_client(max_wait=30.0)
        spacing = 60.0 / self.args.scale / 50 * 1.5  # below the 50/min single-item group
        # The limiter's own share of an edit's latency (the protocol's interactive acquire
        # wait), apart from the request itself.
        waits: list[float] = []
        acquire = client.limiter.acquire

        def timed_acquire(**kw: Any) -> Any:
            permit = acquire(**kw)
            waits.append(permit.waited)
            return permit

        client.limiter.acquire = timed_acquire  # type: ignore[method-assign]

        # Single-item PATCH and GET in turn, as the protocol measures both: (method, during
        # the job, epoch sent, epoch answered, seconds).
        calls: list[tuple[str, bool, float, float, float]] = []
        methods = itertools.cycle(("PATCH", "GET"))

        def call(during: bool) -> None:
            method = next(methods)
            started, at = time.perf_counter(), time.time()
            if method == "PATCH":
                client.catalog_item_edit(
                    catalog_name="products",
                    item_id="sku-000001",
                    values={"stock": self.rng.randint(0, 99)},
                )
            else:
                client.catalog_item_get(catalog_name="products", item_id="sku-000002")
            calls.append((method, during, at, time.time(), time.perf_counter() - started))

        # Enough idle calls for a p95 that is not simply the slowest of a few.
        for _ in range(2 * IDLE_CALLS_EACH):
            call(False)
            time.sleep(spacing)
        idle_waits = len(waits)
        last = [0.0]

        def during(fraction: float) -> None:
            if 0.05 < fraction < 0.95 and time.monotonic() - last[0] > spacing:
                last[0] = time.monotonic()
                call(True)

        result = self.single("C", during=during)
        if self.args.windows:
            self.print_call_parts(calls)

        def pick(method: str, busy: bool) -> list[float]:
            return [c[4] * 1000 for c in calls if c[0] == method and c[1] is busy]

        for method in ("PATCH", "GET"):
            key = method.lower()
            for phase, busy in (("idle", False), ("busy", True)):
                xs = pick(method, busy)
                result[f"{key}_p50_{phase}_ms"] = statistics.median(xs)
                result[f"{key}_p95_{phase}_ms"] = _p95(xs)
            result[f"{key}_p95_ratio"] = result[f"{key}_p95_busy_ms"] / max(
                result[f"{key}_p95_idle_ms"], 1e-9
            )
        result["acquire_p95_idle_ms"] = _p95([w * 1000 for w in waits[:idle_waits]])
        result["acquire_p95_busy_ms"] = _p95([w * 1000 for w in waits[idle_waits:]])
        client.limiter.acquire = acquire  # type: ignore[method-assign]
        return result

    def s_D(self, run: int) -> dict[str, Any]:
        self.reset_sandbox()
        self.sandbox.admin.set_external_consumer(GROUP, 0.3)
        try:
            result = self.single("D")
        finally:
            self.sandbox.admin.clear_external_consumers()
        since, until = result["since"], result["until"]
        result.update(neighbour_figures(self.sandbox, GROUP, LIMIT, since, until, self.args.scale))
        return result

    def s_G(self, run: int) -> dict[str, Any]:
        """A bulk job and a full catalog sync while steady consumers take 25% of both groups."""
        from catalogs.models import Catalog, CatalogSync
        from catalogs.services import catalog_sync_request

        fraction = 0.25
        # The sync reads half as many items per window as the job writes (50 vs 100 per
        # minute): half the job's size keeps both running together.
        self.reset_sandbox(products=max(self.args.items // 2, 1000))
        catalog = Catalog.objects.get(name="products")
        self.sandbox.admin.configure(
            consumers=[
                {"workspace": "demo", "group": GROUP, "fraction": fraction},
                {"workspace": "demo", "group": SYNC_GROUP, "fraction": fraction},
            ]
        )
        syncs: list[Any] = []

        def start_sync(done: float) -> None:
            if not syncs:
                syncs.append(catalog_sync_request(catalog=catalog, actor=None, trigger="benchmark"))

        self.watch_groups = [GROUP, SYNC_GROUP]
        try:
            result = self.single("G", during=start_sync)
            deadline = time.monotonic() + float(os.environ.get("BENCH_JOB_TIMEOUT", 900))
            while time.monotonic() < deadline:
                sync = CatalogSync.objects.get(pk=syncs[0].pk)
                if not sync.is_active:
                    break
                time.sleep(0.25)
            else:
                raise RuntimeError("the catalog sync did not finish in time")
        finally:
            self.sandbox.admin.clear_external_consumers()
            self.watch_groups = [GROUP]
        assert sync.started_at is not None
        assert sync.finished_at is not None
        result["sync_state"] = sync.state
        scale = self.args.scale
        result.update(
            neighbour_figures(self.sandbox, GROUP, LIMIT, result["since"], result["until"], scale)
        )
        # The sync's rate is measured while it sends: from its first request to its last.
        # Its closing database work (removing what Braze no longer has, with an audit entry
        # each when the catalog was mirrored before) sends nothing and is reported apart.
        started, finished = sync.started_at.timestamp(), sync.finished_at.timestamp()
        sent = sorted(
            e["t"]
            for e in self.sandbox.admin.log(since=started, until=finished + 0.5, group=SYNC_GROUP)
            if not e.get("external")
        )
        first, last = (sent[0], sent[-1]) if sent else (started, finished)
        result["sync_tail_seconds"] = finished - last
        synced = neighbour_figures(self.sandbox, SYNC_GROUP, SYNC_LIMIT, first, last, scale)
        result.update({f"sync_{k}": v for k, v in synced.items()})
        if self.args.windows:
            print(
                f"    G sync ({SYNC_GROUP}): the console's requests / the consumer's / the "
                "console's own share, per full server window:",
                *(
                    f"{a}/{b}/{c}"
                    for a, b, c in zip(
                        synced["per_window_own"],
                        synced["per_window_others"],
                        synced["per_window_share"],
                        strict=True,
                    )
                ),
                flush=True,
            )
            print(
                f"      the sync's last request {finished - last:.1f} s before it finished",
                flush=True,
            )
            self.print_gaps(first, last, group=SYNC_GROUP, pause=0.5)
        return result

    def s_E(self, run: int) -> dict[str, Any]:
        self.reset_sandbox()
        assert self.workers is not None
        workers = self.workers
        marks = {0.2: "kill", 0.4: "kill", 0.5: "redis", 0.6: "kill"}
        done: set[float] = set()
        rng = random.Random(self.args.seed + run)
        restarted: list[float] = []

        def during(fraction: float) -> None:
            for mark, what in marks.items():
                if fraction >= mark and mark not in done:
                    done.add(mark)
                    if what == "kill":
                        index = rng.randrange(workers.n)
                        workers.kill9(index)
                        self.events.append((time.time(), f"kill -9 of worker {index}"))
                        workers.start_one(index)
                    else:
                        self.redis.stop()
                        self.redis.start()
                        restarted.append(time.time())
                        self.events.append((time.time(), "Redis restarted"))

        result = self.single("E", during=during)
        # The first request after the restart is the limiter's cold-start probe: refused when
        # Braze's window was already full (it is not counted then, and blocks the group until
        # the reset). Any other 429 would be the burst the probe exists to prevent.
        after = (
            sorted(
                (
                    e
                    for e in self.sandbox.admin.log(since=restarted[0], group=GROUP)
                    if not e.get("external")
                ),
                key=lambda e: e["t"],
            )
            if restarted
            else []
        )
        result["429_probe"] = int(bool(after) and after[0]["status"] == 429)
        self.restart_workers()  # a clean slate for the next scenario
        return result

    def s_celery(self, run: int) -> dict[str, Any]:
        """Celery's per-worker rate_limit (limit ÷ workers, the usual advice), no global limiter."""
        self.reset_sandbox()
        workers = self.restart_workers(limiter_off=True)
        from console.celery import app

        per_worker = LIMIT * self.args.scale / workers.n  # per real minute
        app.control.rate_limit("catalogs.bulk.tasks.bulk_send_task", f"{per_worker:.0f}/m")
        try:
            return self.single("celery")
        finally:
            self.restart_workers()

    def parse(self) -> None:
        """Parse and validate a 100 MB CSV in a child process: rows/s, CPU per row (the
        console's and its PostgreSQL backend's) and peak RSS, against issue 24's target 2."""
        from django.db import connection

        from catalogs.models import Catalog

        # The parse runs eagerly in the child: no worker is needed, and beat's catalog sync
        # would remove the seeded mirror items (the sandbox has none of them) mid-parse.
        if self.workers:
            self.workers.stop()
        path = self.tmp / "big.csv"
        ids_needed = 0
        rng = random.Random(self.args.seed)
        mirror_rng = random.Random(self.args.seed + 1)
        mirrored = self.tmp / "mirror.copy"
        catalog = Catalog.objects.get(name="products")
        with path.open("w", encoding="utf-8") as out, mirrored.open("w") as held:
            out.write("id,name,category,price,stock,in_stock,color\n")
            # Just under the upload limit (100 MB) by default.
            while out.tell() < self.args.parse_mb * 1024 * 1024 - 4096:
                ids_needed += 1
                item_id = f"p-{ids_needed:08d}"
                name = f"A rather descriptive product name number {ids_needed}"
                category = rng.choice(["shoes", "bags"])
                price = f"{rng.randint(1, 999)}.5"
                stock = rng.randint(0, 900)
                out.write(f"{item_id},{name},{category},{price},{stock},true,navy\n")
                # A share of the ids is in the mirror already, half of those with another
                # stock: the diff finds creates, updates and unchanged rows.
                if mirror_rng.random() < self.args.parse_mirror:
                    data = {
                        "name": name,
                        "category": category,
                        "price": float(price),
                        "stock": stock + (mirror_rng.random() < 0.5),
                        "in_stock": True,
                        "color": "navy",
                    }
                    text = json.dumps(data).replace("\\", "\\\\")
                    held.write(f"{catalog.pk}\t{item_id}\t{text}\t\t2026-12-01 00:00:00+00\n")
        with connection.cursor() as cursor:
            with (
                cursor.copy(
                    "COPY catalogs_catalogitem"
                    " (catalog_id, item_id, data, search_text, mirrored_at)"
                    " FROM STDIN"
                ) as copy,
                mirrored.open("rb") as held,
            ):
                while block := held.read(1 << 20):
                    copy.write(block)
            cursor.execute("ANALYZE catalogs_catalogitem")
            cursor.execute("SELECT pg_backend_pid()")
            postmaster = _parent_pid(cursor.fetchone()[0])
        mirrored.unlink()
        env = {**self.env(), "CELERY_TASK_ALWAYS_EAGER": "1"}
        cluster_before = _cluster_cpu(postmaster)
        printed = subprocess.run(
            [
                sys.executable,
                "-c",
                "from scripts.bench_bulk import parse_child;"
                f"parse_child({str(path)!r}, {self.args.profile_parse!r})",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        cluster = _cluster_cpu(postmaster) - cluster_before
        if self.args.profile_parse:
            print("\n".join(printed.strip().splitlines()[:-1]), flush=True)
        result = json.loads(printed.strip().splitlines()[-1])
        size = path.stat().st_size / 1024 / 1024
        rows, seconds = result["rows"], result["seconds"]
        console_us = result["cpu"] * 1e6 / rows
        pg_us = result["pg_cpu"] * 1e6 / rows
        total_us = console_us + pg_us
        load = os.getloadavg()
        print(
            f"parse: {size:.0f} MB CSV, {rows:,} rows ({result['counts']}; "
            f"{self.args.parse_mirror:.0%} of the ids in the mirror) in {seconds:.1f} s = "
            f"{rows / seconds:,.0f} rows/s wall (parse, validate, diff, store) = "
            f"{rows / seconds / 50_000:.2f} × target 50,000 rows/s; "
            # CPU time holds on a shared machine where wall time follows the load.
            f"CPU per row: console {console_us:.1f} µs + PostgreSQL backend {pg_us:.1f} µs = "
            f"{total_us:.1f} µs = {total_us / 20:.2f} × target 20 µs/row "
            f"(one core: {1e6 / total_us:,.0f} rows/s); PostgreSQL cluster, every process "
            f"{cluster * 1e6 / rows:.1f} µs/row; "
            f"peak RSS {result['rss_mb']:.0f} MB = {result['rss_mb'] / 300:.2f} × the 300 MB "
            f"line; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            flush=True,
        )
        path.unlink()
        CatalogItem = catalog.items.model
        CatalogItem.objects.filter(catalog=catalog, item_id__startswith="p-").delete()
        self.restart_workers()

    # driver -------------------------------------------------------------------------------------

    def setup(self) -> None:
        from tests.fixtures.sandbox import start_sandbox

        self.redis.start()
        self.sandbox = start_sandbox(
            self.tmp / "sandbox",
            seed_demo=True,
            seed_products=100,
            log_level="error",
            clock_scale=self.args.scale,
            profile=PROFILE,
        )
        self.sandbox.admin.profile = PROFILE
        self.workspace = f"bench-{uuid.uuid4().hex[:8]}"
        os.environ.update(self.env())
        import django

        django.setup()
        from catalogs.services import catalog_mirror_refresh
        from console.braze import get_client
        from console.services import demo_users_create

        demo_users_create()
        catalog_mirror_refresh(client=get_client(max_wait=30))
        self.restart_workers()

    def teardown(self) -> None:
        if self.workers:
            self.workers.stop()
        if self.sandbox:
            self.sandbox.stop()
        self.redis.stop()
        log = self.tmp / "workers.log"
        if log.exists():
            errors = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if "Error" in line or "Traceback" in line
            ]
            if errors:
                print("worker errors (last 5):", *errors[-5:], sep="\n    ")
            dropped = log.read_text(errors="replace").count("did not fit its fixed windows")
            print(f"limiter: learnt fixed-window grid dropped {dropped} times (workers.log)")
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(name: str, runs: list[dict[str, Any]], machine_bound: bool) -> None:
    def col(key: str, fmt: str = "{:.3f}") -> str:
        return summary([r.get(key) for r in runs], fmt)

    tag = " [machine-bound]" if machine_bound else ""
    line = (
        f"{name}{tag}: U {col('U')} (÷ background share {background_share():g}: "
        f"{col('U_share')}); 429s {col('429', '{:.0f}')}; peak/limit fixed "
        f"{col('peak_fixed', '{:.2f}')} sliding {col('peak_sliding', '{:.2f}')}; lost "
        f"{col('lost', '{:.0f}')}; re-sent (referee) {col('resent_referee', '{:.0f}')} "
        f"(console counted {col('resent_console', '{:.0f}')}); ETA error at 10% "
        f"{col('eta_err', '{:.1%}')}"
    )
    if any(r.get("429") for r in runs):
        line += (
            f"; 429s after an earlier 429's answer in its window {col('429_repeated', '{:.0f}')}"
        )
    if any("429_probe" in r for r in runs):
        probe = col("429_probe", "{:.0f}")
        line += f"; of the 429s, the cold-start probe after the Redis restart {probe}"
    if any("ext_429" in r for r in runs):
        line += (
            f"; external consumer's 429s {col('ext_429', '{:.0f}')} (target 0), console's "
            f"429s {col('own_429', '{:.0f}')}, console's rate ÷ its own share "
            f"{col('rate_per_share')} (share {col('own_share', '{:.1f}')} requests per window)"
        )
    if any("sync_ext_429" in r for r in runs):
        line += (
            f"; while the full sync sends ({SYNC_GROUP}, "
            f"{col('sync_neighbour_windows', '{:.0f}')} full windows): external consumer's 429s "
            f"{col('sync_ext_429', '{:.0f}')}, "
            f"console's 429s {col('sync_own_429', '{:.0f}')}, console's rate ÷ its own share "
            f"{col('sync_rate_per_share')} (share {col('sync_own_share', '{:.1f}')})"
        )
    if any("jain" in r for r in runs):
        line += f"; Jain fairness {col('jain')}"
    for method in ("patch", "get"):
        if not any(f"{method}_p95_ratio" in r for r in runs):
            continue
        idle = (
            f"{col(f'{method}_p50_idle_ms', '{:.1f}')} / {col(f'{method}_p95_idle_ms', '{:.1f}')}"
        )
        busy = (
            f"{col(f'{method}_p50_busy_ms', '{:.1f}')} / {col(f'{method}_p95_busy_ms', '{:.1f}')}"
        )
        line += f"; interactive {method.upper()} p50 / p95 idle {idle} ms, during job {busy} ms, "
        line += f"p95 ratio {col(f'{method}_p95_ratio', '{:.2f}')}"
    if any("acquire_p95_idle_ms" in r for r in runs):
        wait_idle = col("acquire_p95_idle_ms", "{:.1f}")
        wait_busy = col("acquire_p95_busy_ms", "{:.1f}")
        line += f" (the limiter's acquire wait p95: idle {wait_idle} ms, during {wait_busy} ms)"
    print(line + f" (median [min–max] of {len(runs)})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--windows", action="store_true", help="print requests per window")
    parser.add_argument(
        "--profile-parse", action="store_true", help="profile the parse scenario (cProfile)"
    )
    parser.add_argument(
        "--sandbox-store",
        action="store_true",
        help="headroom: let the sandbox store the items it accepts (as before issue 24)",
    )
    parser.add_argument(
        "--profile-workers",
        metavar="DIR",
        help="profile the headroom scenario's workers (cProfile of CPU time, solo pool) into DIR",
    )
    parser.add_argument(
        "--pg-statements",
        action="store_true",
        help="headroom: print PostgreSQL's costliest statements (pg_stat_statements, loaded "
        "only with this flag: it costs every statement a little)",
    )
    parser.add_argument(
        "--parse-mb", type=int, default=100, help="size of the parse scenario's CSV (MB)"
    )
    parser.add_argument(
        "--parse-mirror",
        type=float,
        default=0.5,
        help="share of the parse scenario's ids already in the mirror",
    )
    parser.add_argument(
        "--scenarios", default="headroom,A,B,C,D,E,F_sliding,F_token,G,celery,parse"
    )
    args = parser.parse_args()
    bench = Bench(args)
    bench.machine_bound = False
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"bench_bulk: sandbox profile {PROFILE} ({GROUP} {LIMIT}/min, {SYNC_GROUP} "
        f"{SYNC_LIMIT}/min), S={args.scale:g} (window {60 / args.scale:g} s, ceiling "
        f"{LIMIT * BATCH * args.scale / 60:,.0f} items/s scaled = 5,000 items/min real), "
        f"{args.items:,} items, {args.workers} workers, seed {args.seed}, {args.runs} runs, "
        f"git {git}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
        flush=True,
    )
    try:
        bench.setup()
        for name in args.scenarios.split(","):
            if name == "headroom":
                bench.headroom()
            elif name == "parse":
                bench.parse()
            else:
                label = {
                    "A": "A one job",
                    "B": "B two jobs",
                    "C": "C with single-item edits",
                    "D": "D external consumer 30%",
                    "E": "E 3×kill -9 + Redis restart",
                    "G": "G consumers 25% on both item groups, job + full sync",
                    "F_sliding": "F sliding-log server",
                    "F_token": "F token-bucket server",
                    "celery": "Celery per-worker rate_limit instead of the global limiter",
                }.get(name, name)
                report(label, bench.scenario(name), bench.machine_bound)
                mem = bench.workers.peak_rss_kb / 1024 if bench.workers else 0
                print(f"    peak worker RSS so far {mem:.0f} MB", flush=True)
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
