"""The Braze workspaces this console serves, read from configuration only (never the database).

``BRAZE_WORKSPACES`` names them, comma-separated ("staging,production"); each reads its own
variables, ``BRAZE_<KEY>_REST_ENDPOINT``, ``BRAZE_<KEY>_API_KEY``, ``BRAZE_<KEY>_SCIM_TOKEN``,
``BRAZE_<KEY>_SCIM_ORIGIN``, ``BRAZE_<KEY>_LABEL`` and ``BRAZE_<KEY>_PRODUCTION`` ("1").
Unset, the console serves one workspace built from today's single-workspace variables
(``BRAZE_REST_ENDPOINT``, ``BRAZE_API_KEY``, …), keyed by ``BRAZE_WORKSPACE``, so a
single-workspace set-up keeps working unchanged.

Secrets may instead come from a TOML file named by ``BRAZE_WORKSPACES_FILE``, one table per
workspace holding ``api_key`` and ``scim_token`` only; the file must be readable by its owner
alone. A secret is given in one place: the same one in both the file and the environment is
refused rather than one silently winning.

Settings parse the environment once (``workspaces_from_env``); everything else asks this
module (``workspace_get``, ``workspaces_all``, ``workspace_default``).
"""

import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_KEY = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Workspace:
    key: str
    label: str
    rest_endpoint: str
    # Secrets: repr=False keeps them out of tracebacks and debug pages.
    api_key: str = field(repr=False)
    scim_token: str = field(default="", repr=False)
    scim_origin: str = ""
    production: bool = False


def workspaces_from_env(env: Mapping[str, str]) -> tuple[Workspace, ...]:
    """The configured workspaces, the default (first) one first."""
    workspaces = _workspaces_from_variables(env)
    path = env.get("BRAZE_WORKSPACES_FILE", "").strip()
    if not path:
        return workspaces
    return _with_file_secrets(workspaces, workspace_secrets_file(Path(path)))


_SECRET_FIELDS = ("api_key", "scim_token")


def workspace_secrets_file(path: Path) -> dict[str, dict[str, str]]:
    """Each workspace's secrets from the TOML file at ``path`` (``{key: {"api_key": …}}``).

    Refused when anyone but its owner may read it, and on any content other than string
    secrets. Messages name the file and the place, never a value.
    """
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise ImproperlyConfigured(
            f"BRAZE_WORKSPACES_FILE {str(path)!r} cannot be read ({error.strerror})."
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ImproperlyConfigured(
            f"BRAZE_WORKSPACES_FILE {str(path)!r} may be read by others: "
            "make it readable by the console's user alone (chmod 600)."
        )
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        # The decoder's message names a line and column, never the text there.
        raise ImproperlyConfigured(
            f"BRAZE_WORKSPACES_FILE {str(path)!r} is not valid TOML: {error}"
        ) from None
    secrets: dict[str, dict[str, str]] = {}
    for key, table in data.items():
        if not isinstance(table, dict):
            raise ImproperlyConfigured(
                f"BRAZE_WORKSPACES_FILE: {key!r} must be a table ([{key}]) of secrets."
            )
        unknown = sorted(set(table) - set(_SECRET_FIELDS))
        if unknown:
            raise ImproperlyConfigured(
                f"BRAZE_WORKSPACES_FILE: [{key}] holds {unknown}; only "
                f"{list(_SECRET_FIELDS)} belong in the file (the rest in the environment)."
            )
        if not all(isinstance(value, str) for value in table.values()):
            raise ImproperlyConfigured(f"BRAZE_WORKSPACES_FILE: [{key}]'s secrets must be strings.")
        secrets[key] = dict(table)
    return secrets


def _with_file_secrets(
    workspaces: tuple[Workspace, ...], secrets: Mapping[str, Mapping[str, str]]
) -> tuple[Workspace, ...]:
    known = {workspace.key for workspace in workspaces}
    strangers = sorted(set(secrets) - known)
    if strangers:
        raise ImproperlyConfigured(
            f"BRAZE_WORKSPACES_FILE names workspaces {strangers} that are not configured "
            f"(configured: {sorted(known)})."
        )
    merged = []
    for workspace in workspaces:
        given = secrets.get(workspace.key, {})
        for name in given:
            if getattr(workspace, name):
                raise ImproperlyConfigured(
                    f"Workspace {workspace.key!r}: {name} is set both in the environment and in "
                    "BRAZE_WORKSPACES_FILE; keep it in one place."
                )
        merged.append(
            replace(
                workspace,
                api_key=given.get("api_key", workspace.api_key),
                scim_token=given.get("scim_token", workspace.scim_token),
            )
        )
    return tuple(merged)


def workspace_secrets(workspaces: tuple[Workspace, ...]) -> list[str]:
    """Every workspace's API key and SCIM token (empty ones left out), for masking."""
    return [
        value
        for workspace in workspaces
        for value in (workspace.api_key, workspace.scim_token)
        if value
    ]


def _workspaces_from_variables(env: Mapping[str, str]) -> tuple[Workspace, ...]:
    names = [n.strip() for n in env.get("BRAZE_WORKSPACES", "").split(",") if n.strip()]
    if not names:
        key = env.get("BRAZE_WORKSPACE", "default").strip() or "default"
        return (
            Workspace(
                key=_checked_key(key),
                label=env.get("BRAZE_WORKSPACE_LABEL", key.replace("-", " ").title()),
                rest_endpoint=env.get("BRAZE_REST_ENDPOINT", "http://127.0.0.1:9400"),
                api_key=env.get("BRAZE_API_KEY", ""),
                scim_token=env.get("BRAZE_SCIM_TOKEN", ""),
                scim_origin=env.get("BRAZE_SCIM_ORIGIN", ""),
                production=env.get("BRAZE_WORKSPACE_PRODUCTION", "0") == "1",
            ),
        )
    if len(set(names)) != len(names):
        raise ImproperlyConfigured("BRAZE_WORKSPACES names a workspace twice.")
    return tuple(_from_prefixed(env, _checked_key(name)) for name in names)


def _checked_key(key: str) -> str:
    if not _KEY.match(key):
        raise ImproperlyConfigured(
            f"Workspace name {key!r}: use lowercase letters, digits and hyphens, "
            "starting with a letter (at most 40 characters)."
        )
    return key


def _from_prefixed(env: Mapping[str, str], key: str) -> Workspace:
    prefix = f"BRAZE_{key.upper().replace('-', '_')}_"
    endpoint = env.get(prefix + "REST_ENDPOINT", "")
    if not endpoint:
        raise ImproperlyConfigured(f"{prefix}REST_ENDPOINT is not set for workspace {key!r}.")
    return Workspace(
        key=key,
        label=env.get(prefix + "LABEL", key.replace("-", " ").title()),
        rest_endpoint=endpoint,
        api_key=env.get(prefix + "API_KEY", ""),
        scim_token=env.get(prefix + "SCIM_TOKEN", ""),
        scim_origin=env.get(prefix + "SCIM_ORIGIN", ""),
        production=env.get(prefix + "PRODUCTION", "0") == "1",
    )


def workspaces_all() -> tuple[Workspace, ...]:
    # Lazy: settings import this module to parse the environment.
    from django.conf import settings

    workspaces: tuple[Workspace, ...] = settings.BRAZE_WORKSPACES_CONFIGURED
    return workspaces


def workspace_default() -> Workspace:
    return workspaces_all()[0]


# The workspace being worked in: a request's (WorkspaceMiddleware), or what a worker applies
# (workspace_override around it). Like translation.override, it flows into code that names no
# workspace: the Braze client it gets, and the rows it writes.
_active: ContextVar[Workspace | None] = ContextVar("workspace_active", default=None)


def workspace_active() -> Workspace:
    """The workspace being worked in; the default one outside any."""
    return _active.get() or workspace_default()


@contextmanager
def workspace_override(workspace: Workspace | str) -> Iterator[Workspace]:
    """Work in ``workspace`` (or the workspace with that key) until the block ends."""
    chosen = workspace_get(workspace) if isinstance(workspace, str) else workspace
    token = _active.set(chosen)
    try:
        yield chosen
    finally:
        _active.reset(token)


def workspace_default_key() -> str:
    """The default of every model's ``workspace`` column: the workspace being worked in
    (``workspace_active``), so a row written while answering a request or applying a change
    belongs to its workspace, and rows made before workspaces to the default one."""
    return workspace_active().key


# A workspace key as stored on a row (console/workspaces.py, ``_KEY``).
WORKSPACE_KEY_LENGTH = 40


def workspace_get(key: str) -> Workspace:
    """The workspace named ``key``; ``LookupError`` for a name the configuration lacks."""
    for workspace in workspaces_all():
        if workspace.key == key:
            return workspace
    raise LookupError(f"No workspace named {key!r} is configured.")
