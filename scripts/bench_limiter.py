#!/usr/bin/env python3
"""Benchmark the global Braze rate limiter against the sandbox (the referee).

Several processes drive one limit group (asynchronous catalog items by default) through the
console's real client and limiter, with the sandbox's clock and the console's limiter both
scaled by S. The sandbox's own request log then gives the figures: 429s caused by the console
(must be 0) and the achieved rate in the server's full windows as a ratio of the ceiling
(must be at least 0.95). Run against each server algorithm so the client cannot overfit one.

The sandbox plays the reference profile (``REFERENCE_LIMITS``: e.g. 100/min asynchronous
items), limits this machine can saturate at the benchmark's clock; the console learns them from
X-RateLimit-Limit. The first line says which.

    scripts/bench_limiter.py [--scale 6] [--processes 3] [--seconds 50] [--runs 1]
                             [--algorithms fixed,sliding,token] [--margin 0.2] [--no-grid]

Every run prints the load average, the requests the server counted in each of its full
windows, and where the longest pause between the console's sends came from (the limiter's
own log, a block set from Braze's headers, or the HTTP round trip); ``--runs N`` repeats the
algorithms N times and ends with a summary per algorithm.

The clock starts once every worker process is ready (Django set up, client built): on a
loaded machine starting them takes seconds, which are no part of the limiter's figures.

Uses $REDIS_URL when set, otherwise starts a private redis-server on a unix socket.
Exit status 1 when any run misses a pass line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUP_OPERATION = {
    "catalog_items_async": "catalog_items_bulk_edit",
    "catalog_items_sync": "catalog_item_get",
    "catalogs_sync": "catalog_list",
}


def _configure_django(args: argparse.Namespace) -> None:
    # The console reads its limits from settings; the benchmark only scales them.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ["BRAZE_RATE_LIMIT_CLOCK_SCALE"] = str(args.scale)
    os.environ["BRAZE_RATE_LIMIT_MARGIN_SECONDS"] = str(args.margin)
    os.environ["BRAZE_RATE_LIMIT_BACKGROUND_SHARE"] = str(args.background_share)
    os.environ["BRAZE_RATE_LIMIT_ALIGN"] = "0" if args.no_grid else "1"
    import django

    django.setup()


# Set in each worker process by the pool's initializer: the barrier every worker and the main
# process meet at once ready, and the start time the main process then sets.
_READY: Any = None
_START: Any = None


def share_start(ready: Any, start: Any) -> None:
    global _READY, _START
    _READY, _START = ready, start


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One process: send requests of one group as fast as the limiter allows until the end."""
    args = argparse.Namespace(**spec["args"])
    os.environ["REDIS_URL"] = spec["redis_url"]
    _configure_django(args)
    import httpx
    import redis

    from console.braze.client import BrazeClient
    from console.braze.errors import BrazeRateLimited
    from console.braze.limiter import RateLimiter, limits_from_settings

    limiter = RateLimiter(
        redis_client=redis.Redis.from_url(spec["redis_url"]),
        limits=limits_from_settings(),
        prefix=spec["prefix"],
    )
    client = BrazeClient(
        http=httpx.Client(base_url=spec["url"], timeout=30),
        limiter=limiter,
        api_key=spec["api_key"],
        lane=args.lane,
        max_wait=120.0,
    )
    # What a pause between sends came from: the limiter's wait, a block, or the round trip.
    calls: list[tuple[float, float, float]] = []
    blocks: list[tuple[float, float, bool, bool]] = []
    acquire, block = limiter.acquire, limiter.block

    def timed_acquire(**kwargs: Any) -> Any:
        started = time.time()
        permit = acquire(**kwargs)
        calls.append((started, time.time(), 0.0))
        return permit

    def recorded_block(**kwargs: Any) -> Any:
        until = block(**kwargs)
        blocks.append(
            (time.time(), kwargs["seconds"], kwargs.get("only_if_room", False), until is not None)
        )
        return until

    limiter.acquire = timed_acquire  # type: ignore[method-assign]
    limiter.block = recorded_block  # type: ignore[method-assign]
    n = spec["index"]
    sent = refused_by_braze = 0
    # Ready: Django is set up and the client built. The main process sets the start once every
    # worker is, so that starting processes on a loaded machine is not counted as the limiter's.
    _READY.wait(timeout=300)
    _READY.wait(timeout=300)
    start_at = _START.value
    end_at = start_at + args.seconds
    while time.time() < start_at:
        time.sleep(0.005)
    while time.time() < end_at:
        try:
            if args.group == "catalog_items_async":
                first = (sent * 50 + n * 7) % (args.products - 50)
                items = [{"id": f"sku-{first + k + 1:06d}", "stock": sent} for k in range(50)]
                client.catalog_items_bulk_edit(catalog_name="products", items=items)
            elif args.group == "catalog_items_sync":
                client.catalog_item_get(catalog_name="stores", item_id="store-london")
            else:
                client.catalog_list()
        except BrazeRateLimited as exc:
            refused_by_braze += int(exc.from_braze)
            continue
        sent += 1
    return {
        "sent": sent,
        "refused_by_braze": refused_by_braze,
        "calls": calls,
        "blocks": blocks,
        "aligned": limiter.aligned(group=args.group),
    }


def start_redis(directory: Path) -> tuple[str, subprocess.Popen[bytes]]:
    sock = directory / "redis.sock"
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    return f"unix://{sock}?db=0", proc


@dataclass
class Run:
    algorithm: str
    ratio: float
    console_429s: int
    per_window: list[int]
    load: float

    @property
    def ok(self) -> bool:
        return self.console_429s == 0 and self.ratio >= 0.95


def longest_pause(runs: list[dict[str, Any]], start_at: float, end_at: float) -> str:
    """Where the longest pause between two sends (any process) came from."""
    sends = sorted(at for r in runs for _started, at, _ in r["calls"] if start_at <= at <= end_at)
    if len(sends) < 2:
        return "no sends"
    gap, before = max((b - a, a) for a, b in itertools.pairwise(sends))
    after = before + gap
    # Processes waiting in the limiter through most of the pause: the log or a block held them.
    waiting = sum(
        1
        for r in runs
        for started, at, _ in r["calls"]
        if started <= before + 0.05 and at >= after - 0.05
    )
    blocks = [
        (seconds, only_if_room)
        for r in runs
        for t, seconds, only_if_room, was_set in r["blocks"]
        if was_set and before - 0.5 <= t <= after
    ]
    cause = "limiter wait" if waiting else "no process waiting in the limiter (HTTP or CPU)"
    if blocks:
        kinds = ", ".join(
            f"{seconds:.2f}s {'remaining 0' if only_if_room else '429'}"
            for seconds, only_if_room in blocks
        )
        cause += f"; blocks set: {kinds}"
    at = before - start_at
    return f"longest pause {gap:.2f}s at +{at:.1f}s ({waiting} processes waiting; {cause})"


def run_once(args: argparse.Namespace, algorithm: str, sandbox: Any, redis_url: str) -> Run:
    from braze_sandbox.config import REFERENCE_LIMITS

    limit, window = REFERENCE_LIMITS[args.group]
    sandbox.admin.reset(products=args.products, profile="reference")
    sandbox.admin.configure(clock_scale=args.scale, algorithm=algorithm, async_delay_seconds=3600.0)
    real_window = window / args.scale
    base = {
        "args": vars(args),
        "redis_url": redis_url,
        "url": sandbox.url,
        "api_key": sandbox.api_key,
        "prefix": f"bench:{uuid.uuid4().hex}",
    }
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(args.processes + 1)
    start = context.Value("d", 0.0)
    with context.Pool(args.processes, initializer=share_start, initargs=(ready, start)) as pool:
        pending = pool.map_async(worker, [{**base, "index": i} for i in range(args.processes)])
        ready.wait(timeout=300)
        load = os.getloadavg()[0]
        start_at = time.time() + 0.2
        start.value = start_at
        ready.wait(timeout=300)
        runs = pending.get()
    end_at = start_at + args.seconds
    stats = sandbox.admin.group_stats(args.group, since=start_at - 0.5)
    windows = [
        w for w in stats["windows"] if w["start"] >= start_at and w["start"] + real_window <= end_at
    ]
    per_window = [w["own_counted"] for w in windows]
    achieved = sum(per_window) / (len(per_window) * real_window) if per_window else 0.0
    ceiling = limit / real_window
    ratio = achieved / ceiling
    console_429s = stats["rate_limited"]
    # One Braze minute lasts 60/S real seconds.
    per_real_minute = achieved * 60 / args.scale
    ceiling_per_minute = limit * 60 / window
    unit = "requests"
    if args.group == "catalog_items_async":
        unit, per_real_minute, ceiling_per_minute = (
            "items",
            per_real_minute * 50,
            ceiling_per_minute * 50,
        )
    run = Run(algorithm, ratio, console_429s, per_window, load)
    if args.dump:
        path = Path(args.dump) / f"{algorithm}-{int(start_at)}.json"
        path.write_text(
            json.dumps(
                {
                    "start_at": start_at,
                    "end_at": end_at,
                    "workers": runs,
                    "windows": stats["windows"],
                }
            )
        )
    print(
        f"{algorithm:>7}: throughput {per_real_minute:,.0f} {unit}/min = {ratio:.3f} × ceiling "
        f"{ceiling_per_minute:,.0f} (S={args.scale:g}, {args.processes} processes, "
        f"{len(per_window)} full windows of {real_window:g} s, per window {per_window}); "
        f"429s caused by the console: {console_429s}; peak in any sliding window: "
        f"{stats['peak_requests_in_sliding_window']}/{limit}; "
        f"sent {sum(r['sent'] for r in runs)}; grid learnt: {any(r['aligned'] for r in runs)}; "
        f"load {load:.2f} -> {'PASS' if run.ok else 'FAIL'}",
        flush=True,
    )
    print(f"         {longest_pause(runs, start_at, end_at)}", flush=True)
    return run


def summary(results: list[Run], algorithms: list[str]) -> None:
    print("summary:", flush=True)
    for algorithm in algorithms:
        runs = [r for r in results if r.algorithm == algorithm]
        ratios = sorted(r.ratio for r in runs)
        lowest = min(runs, key=lambda r: r.ratio)
        print(
            f"{algorithm:>7}: {sum(r.ok for r in runs)}/{len(runs)} runs pass; ratio min "
            f"{ratios[0]:.3f} median {statistics.median(ratios):.3f} max {ratios[-1]:.3f}; "
            f"console 429s {sum(r.console_429s for r in runs)}; lowest run's windows "
            f"{lowest.per_window} (load {lowest.load:.2f}); smallest window "
            f"{min((min(r.per_window, default=0) for r in runs), default=0)}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=6.0)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=50.0)
    parser.add_argument("--algorithms", default="fixed,sliding,token")
    parser.add_argument("--group", default="catalog_items_async", choices=list(GROUP_OPERATION))
    parser.add_argument("--margin", type=float, default=0.2, help="real seconds per window")
    parser.add_argument("--lane", default="interactive", choices=["interactive", "background"])
    parser.add_argument(
        "--background-share",
        type=float,
        default=1.0,
        help="background work's share (the console's default is 0.7); the benchmark measures "
        "the limiter against the whole limit",
    )
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--dump", default="", help="a folder for each run's raw figures (JSON)")
    parser.add_argument("--runs", type=int, default=1, help="repeat every algorithm N times")
    parser.add_argument(
        "--no-grid", action="store_true", help="the sliding log alone (no learnt fixed windows)"
    )
    args = parser.parse_args()

    from tests.fixtures.sandbox import start_sandbox

    tmp = Path(tempfile.mkdtemp(prefix="bench-limiter-"))
    redis_proc = None
    redis_url = os.environ.get("REDIS_URL", "")
    sandbox = None
    try:
        if not redis_url:
            redis_url, redis_proc = start_redis(tmp)
        sandbox = start_sandbox(
            tmp / "sandbox",
            seed_demo=True,
            seed_products=args.products,
            log_level="error",
            profile="reference",
        )
        from braze_sandbox.config import REFERENCE_LIMITS

        limit, window = REFERENCE_LIMITS[args.group]
        print(
            f"bench_limiter: sandbox profile reference ({args.group} {limit:,} per {window:g} s), "
            f"group {args.group}, lane {args.lane}, margin {args.margin} s, "
            f"grid {'off' if args.no_grid else 'on'}, git {
                subprocess.run(
                    ['git', 'rev-parse', '--short', 'HEAD'],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                ).stdout.strip()
            }, "
            f"{os.cpu_count()} cores",
            flush=True,
        )
        algorithms = args.algorithms.split(",")
        results = []
        for number in range(1, args.runs + 1):
            if args.runs > 1:
                print(f"run {number}/{args.runs}", flush=True)
            results += [run_once(args, algorithm, sandbox, redis_url) for algorithm in algorithms]
        if args.runs > 1:
            summary(results, algorithms)
    finally:
        if sandbox is not None:
            sandbox.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
