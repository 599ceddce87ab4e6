"""The Lua scripts (``lua/*.lua``), each called with its keys by name and one JSON argument.

Every script begins with ``lua/prelude.lua``, which decodes the argument into ``A`` and names
the keys in ``K``. The scripts run atomically in Redis and read Redis ``TIME``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import redis


def source(*names: str) -> str:
    """The prelude followed by the named files of ``lua/``."""
    folder = resources.files(__package__).joinpath("lua")
    return "\n".join(folder.joinpath(name).read_text() for name in ("prelude.lua", *names))


# Microseconds on a clock of the caller's own, in place of Redis TIME (the model tests).
type Clock = Callable[[], int]


class Script:
    def __init__(self, client: redis.Redis, *names: str, clock: Clock | None = None) -> None:
        self._script = client.register_script(source(*names))
        self._clock = clock

    def __call__(self, *, keys: Mapping[str, str], args: Mapping[str, Any]) -> Any:
        clock = {"now_us": self._clock()} if self._clock is not None else {}
        payload = json.dumps({**args, **clock, "keys": list(keys)})
        return self._script(keys=list(keys.values()), args=[payload])
