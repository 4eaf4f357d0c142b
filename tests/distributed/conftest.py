"""Redis for the tests of the shared crawl: the server on 127.0.0.1:6379, skipped
with a reason when absent (failed when CI is set, as PostgreSQL is), and a key
prefix of its own per test so that parallel runs never meet; its keys are deleted
afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.exceptions import RedisError

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_server() -> Redis:
    """A client of the test server, or a skip (a failure in CI)."""
    server = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        server.ping()
    except RedisError as exc:
        message = f"Redis not reachable at 127.0.0.1:6379: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return server


@pytest.fixture
def redis() -> Iterator[Redis]:
    server = redis_server()
    yield server
    server.close()


@pytest.fixture
def prefix(redis: Redis) -> Iterator[str]:
    """A key prefix no other test uses (``REDIS_KEY_PREFIX``); its keys go afterwards."""
    name = f"test-{secrets.token_hex(6)}"
    yield name
    keys = list(redis.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        redis.delete(*keys)
