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


def source_together(*names: str) -> str:
    """The prelude, then each named file's body as a function of its own, run in that order
    in one call; their answers come back as one list (one round trip for several scripts)."""
    folder = resources.files(__package__).joinpath("lua")
    parts = [folder.joinpath("prelude.lua").read_text()]
    for index, name in enumerate(names):
        parts.append(f"local function part{index}()\n{folder.joinpath(name).read_text()}\nend")
    calls = [f"local answer{index} = part{index}()" for index in range(len(names))]
    answers = ", ".join(f"answer{index}" for index in range(len(names)))
    return "\n".join([*parts, *calls, f"return {{{answers}}}"])


# Microseconds on a clock of the caller's own, in place of Redis TIME (the model tests).
type Clock = Callable[[], int]


class Script:
    def __init__(
        self,
        client: redis.Redis,
        *names: str,
        clock: Clock | None = None,
        together: bool = False,
    ) -> None:
        """``together``: the files are scripts of their own, run one after another in one
        call (``source_together``), not parts of one script."""
        text = source_together(*names) if together else source(*names)
        self._script = client.register_script(text)
        self._clock = clock

    def __call__(self, *, keys: Mapping[str, str], args: Mapping[str, Any]) -> Any:
        clock = {"now_us": self._clock()} if self._clock is not None else {}
        payload = json.dumps({**args, **clock, "keys": list(keys)})
        return self._script(keys=list(keys.values()), args=[payload])
