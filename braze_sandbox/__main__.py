"""``python -m braze_sandbox serve --host 127.0.0.1 --port 9400 --data DIR [--seed-demo] …``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn

from braze_sandbox.app import Sandbox
from braze_sandbox.asgi import create_app
from braze_sandbox.config import ALGORITHMS, PROFILES, SandboxConfig, parse_limit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m braze_sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the sandbox HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9400)
    serve.add_argument("--data", type=Path, required=True, help="directory for sandbox.sqlite3")
    serve.add_argument("--seed-demo", action="store_true", help="seed demo data if store empty")
    serve.add_argument("--seed-products", type=int, default=10_000)
    serve.add_argument(
        "--profile",
        choices=PROFILES,
        default="current",
        help="which Braze to play: today's public docs, or the older reference collection",
    )
    serve.add_argument("--clock-scale", type=float, default=1.0)
    serve.add_argument("--algorithm", choices=ALGORITHMS, default="fixed")
    serve.add_argument("--no-rate-limits", action="store_true")
    serve.add_argument(
        "--no-store",
        action="store_true",
        help="accept, check and log bulk item requests without applying them",
    )
    serve.add_argument("--limit", action="append", default=[], metavar="GROUP=N[/SECONDS]")
    serve.add_argument("--async-delay", type=float, default=0.5, help="seconds before 202 applies")
    serve.add_argument("--latency-ms", type=float, default=0.0)
    serve.add_argument("--jitter-ms", type=float, default=0.0)
    serve.add_argument("--error-rate", type=float, default=0.0)
    serve.add_argument("--timeout-rate", type=float, default=0.0)
    serve.add_argument("--timeout-mode", choices=("hold", "drop"), default="hold")
    serve.add_argument("--timeout-seconds", type=float, default=30.0)
    serve.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        help="share of 2xx answers replaced by an unreadable body (after the handler ran)",
    )
    serve.add_argument("--malformed", choices=("html", "shape"), default="html")
    serve.add_argument(
        "--admin-token",
        default=None,
        help="the X-Sandbox-Admin-Token the admin API requires (default: $SANDBOX_ADMIN_TOKEN, "
        "else a new one written to DATA/admin-token)",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="one more REST key with every permission in workspace demo (repeatable)",
    )
    serve.add_argument(
        "--scim-token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="one more SCIM token for company demo-company (repeatable)",
    )
    serve.add_argument(
        "--workspace",
        action="append",
        default=[],
        metavar="NAME",
        help="serve one more workspace besides demo, reached with the published dev key "
        "sandbox-dev-key-NAME (every permission); --seed-demo gives it its own demo data",
    )
    serve.add_argument("--log-level", default="warning")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    config = SandboxConfig(
        clock_scale=args.clock_scale,
        algorithm=args.algorithm,
        rate_limits_enabled=not args.no_rate_limits,
        async_delay_seconds=args.async_delay,
        store_items=not args.no_store,
        seed_products=args.seed_products,
    )
    config.set_profile(args.profile)
    for spec in args.limit:
        group, limit = parse_limit(spec)
        config.limits[group] = limit
    inj = config.injection
    inj.latency_ms, inj.jitter_ms = args.latency_ms, args.jitter_ms
    inj.error_rate, inj.timeout_rate = args.error_rate, args.timeout_rate
    inj.timeout_mode, inj.timeout_seconds = args.timeout_mode, args.timeout_seconds
    inj.malformed_rate, inj.malformed = args.malformed_rate, args.malformed
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    # From the environment rather than the command line, which other local users can read.
    admin_token = args.admin_token or os.environ.get("SANDBOX_ADMIN_TOKEN") or None
    sandbox = Sandbox(
        args.data,
        config_from_args(args),
        admin_token=admin_token,
        seed_demo=args.seed_demo,
        api_keys=args.api_key,
        scim_tokens=args.scim_token,
        workspaces=args.workspace,
    )
    if admin_token is None:
        token_file = args.data / "admin-token"
        token_file.unlink(missing_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(sandbox.admin_token + "\n")
        print(f"admin API token (X-Sandbox-Admin-Token) is in {token_file}", file=sys.stderr)
    # uvicorn re-raises the signal that stopped it once shutdown is done; with these no-op
    # handlers in place that re-raise is harmless, the store is closed and the exit code is 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    # uvicorn's access log prints only method, path and status: never headers, so keys stay out.
    uvicorn.run(
        create_app(sandbox),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    sandbox.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
