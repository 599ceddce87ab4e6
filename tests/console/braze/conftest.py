from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.console.braze.helpers import redis_url


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url())
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A private key prefix, so tests (and parallel runs) never share limiter state."""
    value = f"test:{uuid.uuid4().hex}"
    yield value
    keys = list(redis_client.scan_iter(f"{value}:*"))
    if keys:
        redis_client.delete(*keys)
