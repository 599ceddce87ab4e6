"""The ASGI application: the sandbox's endpoints and its admin API under one Starlette app.

Apart from app.py (the request pipeline) because the admin API's routes are given the Sandbox,
so admin.py depends on app.py and both are assembled here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from braze_sandbox.admin import admin_routes
from braze_sandbox.app import Dropped, Sandbox, specs


def create_app(sandbox: Sandbox) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    routes: list[Any] = [
        Route(spec.path, sandbox.endpoint(spec), methods=[spec.method]) for spec in specs()
    ]
    routes.extend(admin_routes(sandbox))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        sandbox._wake = asyncio.Event()
        tasks = [
            asyncio.create_task(sandbox.applier()),
            asyncio.create_task(sandbox.external_consumers()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    starlette_app = Starlette(routes=routes, lifespan=lifespan)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await starlette_app(scope, receive, send)
        except Dropped:
            # The reply was started and is abandoned: uvicorn closes the connection.
            return

    app.sandbox = sandbox  # type: ignore[attr-defined]
    return app
