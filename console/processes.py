"""Start one of the console's processes with only the credentials that process needs.

    python -m console.processes <kind> <command> [args...]

`scripts/run` hands every process (through honcho and the Procfile) one environment; this
launcher takes out of it the privileged credentials the kind of process is not meant to
hold, then runs the command in its place. docs/security.md says what each credential can
do; in production the same split is made with separate service accounts.
"""

import os
import re
import sys
from collections.abc import Mapping

# Credential -> the only kinds of process that receive it.
PRIVILEGED: dict[str, frozenset[str]] = {
    # The schema owner: migrations and the sort-index builds, never a request or a task.
    "DATABASE_OWNER_URL": frozenset({"migrate", "indexer"}),
    # Signs checkpoints: with it, a rewritten chain could be re-signed.
    "AUDIT_CHECKPOINT_KEY": frozenset({"signer"}),
    # Makes entries that verify: whatever appends to the trail, and no one else.
    "AUDIT_CHAIN_KEY": frozenset({"web", "worker", "beat", "migrate", "command"}),
    # Act as the company in Braze: what calls Braze (requests, tasks, `braze_check`). Beat only
    # sends task messages; the signer, the indexer and migrations never call Braze.
    "BRAZE_API_KEY": frozenset({"web", "worker", "command"}),
    "BRAZE_SCIM_TOKEN": frozenset({"web", "worker", "command"}),
    # Opens /metrics: the web answers scrapes; every other process only records (in Redis).
    "METRICS_TOKEN": frozenset({"web"}),
    # Redeems sign-in codes at the identity provider: only the web signs people in.
    "OIDC_CLIENT_SECRET": frozenset({"web"}),
}
# Each named workspace's secrets (console/workspaces.py), and the file that may hold them,
# go where the default workspace's do.
_WORKSPACE_SECRET = re.compile(r"^BRAZE_[A-Z0-9_]+_(API_KEY|SCIM_TOKEN)$|^BRAZE_WORKSPACES_FILE$")
KINDS = frozenset({"web", "worker", "beat", "migrate", "indexer", "signer", "sandbox", "command"})
# Settings read this: the kinds that append no audit entry start without AUDIT_CHAIN_KEY.
KIND_VARIABLE = "CONSOLE_PROCESS"


def process_environment(kind: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a process of this kind starts with."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of process {kind!r}; one of {', '.join(sorted(KINDS))}")
    env = {
        name: value for name, value in environ.items() if kind in _kinds_holding(name, PRIVILEGED)
    }
    env[KIND_VARIABLE] = kind
    return env


def _kinds_holding(name: str, privileged: Mapping[str, frozenset[str]]) -> frozenset[str]:
    if name in privileged:
        return privileged[name]
    if _WORKSPACE_SECRET.match(name):
        return privileged["BRAZE_API_KEY"]
    return KINDS


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m console.processes <kind> <command> [args...]")
    kind, command = argv[0], argv[1:]
    try:
        env = process_environment(kind, os.environ)
    except ValueError as exc:
        sys.exit(str(exc))
    os.execvpe(command[0], command, env)  # noqa: S606  # the Procfile's own command line


if __name__ == "__main__":
    main(sys.argv[1:])
