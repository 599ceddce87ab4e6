"""The Braze workspaces this console serves, read from configuration only (never the database).

``BRAZE_WORKSPACES`` names them, comma-separated ("staging,production"); each reads its own
variables, ``BRAZE_<KEY>_REST_ENDPOINT``, ``BRAZE_<KEY>_API_KEY``, ``BRAZE_<KEY>_SCIM_TOKEN``,
``BRAZE_<KEY>_SCIM_ORIGIN``, ``BRAZE_<KEY>_LABEL`` and ``BRAZE_<KEY>_PRODUCTION`` ("1").
Unset, the console serves one workspace built from today's single-workspace variables
(``BRAZE_REST_ENDPOINT``, ``BRAZE_API_KEY``, …), keyed by ``BRAZE_WORKSPACE``, so a
single-workspace set-up keeps working unchanged.

Settings parse the environment once (``workspaces_from_env``); everything else asks this
module (``workspace_get``, ``workspaces_all``, ``workspace_default``).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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


def workspace_get(key: str) -> Workspace:
    """The workspace named ``key``; ``LookupError`` for a name the configuration lacks."""
    for workspace in workspaces_all():
        if workspace.key == key:
            return workspace
    raise LookupError(f"No workspace named {key!r} is configured.")
