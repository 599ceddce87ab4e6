"""What an endpoint handler is given: the request, the sandbox's state and the caller's workspace.

Its own module, below app.py: the handler modules (catalogs, content, preferences, scim) need
the type, and app.py, which builds one per request, imports them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from braze_sandbox.config import SandboxConfig
from braze_sandbox.store import Store


class SandboxState(Protocol):
    """The part of app.Sandbox that handlers use."""

    store: Store
    config: SandboxConfig

    def wake_applier(self) -> None: ...


@dataclass
class Ctx:
    request: Request
    sandbox: SandboxState
    workspace: str
    key_name: str
    now: float
    item_ids: list[str] = field(default_factory=list)
    _body: Any = None
    _body_read: bool = False

    @property
    def store(self) -> Store:
        return self.sandbox.store

    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    async def json(self) -> Any:
        """The parsed body, or None when it is missing or not JSON (handlers then refuse it)."""
        if not self._body_read:
            raw = await self.request.body()
            try:
                self._body = json.loads(raw) if raw else None
            except ValueError:
                self._body = None
            self._body_read = True
        return self._body


Handler = Callable[[Ctx], Awaitable[Response]]
