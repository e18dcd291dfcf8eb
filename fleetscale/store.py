"""The Redis boundary: bounded connections, error mapping, scripts and the preflight check.

Every Redis call in fleetscale runs inside `redis_errors()`, which maps redis-py
exceptions to `FleetscaleError` subclasses with the password scrubbed from the message.
Connections get explicit, bounded timeouts and retries (REDIS-FACTS: the defaults can
hang for minutes on a host cut off by a firewall) and TCP keepalive.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import Script
from redis.retry import Retry

from fleetscale.config import REDIS_URL_ENV, URL_SOURCE_ENV, RedisSettings, redact_url
from fleetscale.errors import (
    ConfigurationError,
    FleetscaleError,
    RedisAuthError,
    RedisCommandError,
    RedisUnavailable,
)

Client = redis.Redis
Pipeline = redis.client.Pipeline


def _keepalive_options() -> dict[int, int]:
    """Probe an idle peer after 5 s, every 2 s, give up after 3 misses (Linux names)."""
    wanted = {"TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3}
    return {getattr(socket, k): v for k, v in wanted.items() if hasattr(socket, k)}


def connect(
    settings: RedisSettings, *, block_s: float = 0.0, retry_timeouts: bool = True
) -> Client:
    """Open a client with bounded timeouts; no I/O happens until the first command.

    Args:
        settings: URL and timeouts.
        block_s: the longest server-side block this client will issue (XREADGROUP
            BLOCK), added to the socket timeout so a blocking read is not cut short.
        retry_timeouts: also retry a command whose reply timed out. A timed-out
            command has usually reached Redis and runs once Redis answers again, so a
            client sending writes that are not idempotent (a producer's XADD) must
            say False: a retry would add the job twice (found by the fault suite:
            Redis frozen 2-4 s made one successful submit run twice).

    Raises:
        ConfigurationError: bad settings, or a URL option redis-py cannot parse (such
            as `?db=abc` or `?max_connections=zero`).
    """
    settings.validate()
    retry = Retry(
        ExponentialWithJitterBackoff(cap=settings.retry_backoff_cap_s, base=0.05),
        settings.retries,
        supported_errors=(redis.ConnectionError,)
        if not retry_timeouts
        else (redis.ConnectionError, redis.TimeoutError, socket.timeout),
    )
    try:
        client: Client = redis.Redis.from_url(
            settings.url,
            socket_timeout=settings.socket_timeout_s + block_s,
            socket_connect_timeout=settings.connect_timeout_s,
            socket_keepalive=True,
            socket_keepalive_options=_keepalive_options(),
            retry=retry,
            health_check_interval=int(settings.health_check_interval_s),
            decode_responses=False,
        )
    except ValueError as exc:
        reason = scrub_password(str(exc), settings.url).rstrip(".")
        raise ConfigurationError(
            f"bad Redis URL {redact_url(settings.url)!r}: {reason}; db, max_connections "
            "and socket_read_size take whole numbers"
        ) from None
    return client


def scrub_password(text: str, url: str) -> str:
    """`text` with the password of `url` masked wherever it stands as a token of its own:
    inside a word it is not the password (a password `p` turned `username-password pair`
    into `username-***assword ***air`)."""
    password = urlsplit(url).password
    if not password:
        return text
    for form in {password, unquote(password)}:  # as written in the URL, and as sent
        text = re.sub(rf"(?<![0-9A-Za-z]){re.escape(form)}(?![0-9A-Za-z])", "***", text)
    return text


def _url_source() -> str:
    """Where this process's Redis URL is set: a controller names its own flag for the
    workers it starts (`URL_SOURCE_ENV`)."""
    return os.environ.get(URL_SOURCE_ENV) or f"--redis-url / {REDIS_URL_ENV}"


@contextmanager
def redis_errors(url: str) -> Iterator[None]:
    """Map redis-py exceptions raised inside the block to fleetscale errors.

    Args:
        url: the Redis URL in use, named (without its password) in the message.
    """
    where = redact_url(url)
    try:
        yield
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        raise _access_refused(where, _reason(exc, url)) from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(
            f"Redis at {where} is unreachable: {_reason(exc, url)}; "
            f"check that it runs and the URL ({_url_source()})"
        ) from None
    except redis.exceptions.OutOfMemoryError:
        raise RedisCommandError(
            f"Redis at {where} is out of memory (used memory above maxmemory) and refuses "
            "writes such as new jobs, while workers keep draining the queue; retry "
            "later, or raise maxmemory"
        ) from None
    except redis.ResponseError as exc:
        reason = _reason(exc, url)
        if "DB index is out of range" in reason:  # the SELECT a client sends on connecting
            raise ConfigurationError(
                f"Redis at {where} has no database of that number (DB index is out of "
                "range); use a /DB in the URL below its `databases` setting (16 by default)"
            ) from None
        if reason.startswith(_SCRIPT_REFUSED):  # NOPERM inside a script: no NOPERM code
            raise _access_refused(where, reason) from None
        raise RedisCommandError(f"Redis at {where} refused a command: {reason}") from None
    except redis.RedisError as exc:
        raise FleetscaleError(f"Redis at {where}: {_reason(exc, url)}") from None


_SCRIPT_REFUSED = "The user executing the script can't"
_PIPELINE_QUOTE = " of pipeline caused error: "


def _reason(exc: redis.RedisError, url: str) -> str:
    """Redis's message, without the password, nor the command redis-py quotes in front
    of a pipeline's error (a job's msgpack payload, bytes and all)."""
    text = str(exc)
    if text.startswith("Command # "):
        text = text.rpartition(_PIPELINE_QUOTE)[2]
    return scrub_password(text, url)


def _access_refused(where: str, reason: str) -> RedisAuthError:
    return RedisAuthError(
        f"Redis at {where} refused access: {reason}; check the user, password and ACL in the URL"
    )


@cache
def _script_source(name: str) -> str:
    return resources.files("fleetscale.lua").joinpath(f"{name}.lua").read_text("utf-8")


def script(client: Client, name: str) -> Script:
    """Return the Lua script `fleetscale/lua/<name>.lua` bound to `client`.

    redis-py runs it with EVALSHA and reloads it after NOSCRIPT (a restarted Redis).
    """
    return client.register_script(_script_source(name))


def redis_time_s(client: Client) -> float:
    """Redis `TIME` as float seconds (one round trip; call inside `redis_errors`)."""
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the start-up check found about the Redis deployment.

    Attributes:
        version: the server version string.
        warnings: one line per unsafe setting, empty when the deployment is supported.
    """

    version: str
    warnings: tuple[str, ...]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def preflight(client: Client) -> Preflight:
    """Check persistence, eviction policy and version via INFO (not CONFIG, which
    managed Redis forbids). Call inside `redis_errors`."""
    info: dict[str, Any] = client.info("server") | client.info("persistence")
    info |= client.info("memory")
    version = str(info.get("valkey_version") or info.get("redis_version", "0"))
    warnings = []
    if _version_tuple(version) < (7, 0):
        warnings.append(f"Redis {version} is older than 7.0; fleetscale needs 7.0 or newer")
    if not int(info.get("aof_enabled", 0)):
        warnings.append(
            "AOF persistence is off: acknowledged jobs are lost if Redis restarts "
            "(set appendonly yes, appendfsync everysec)"
        )
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        warnings.append(
            f"maxmemory-policy is {policy}: Redis may evict the job stream "
            "(set maxmemory-policy noeviction)"
        )
    return Preflight(version=version, warnings=tuple(warnings))


StreamEntry = tuple[bytes, dict[bytes, bytes]]


def read_bytes(client: Client, key: str) -> bytes | None:
    """GET as bytes (call inside `redis_errors`)."""
    return cast(bytes | None, client.get(key))


def stream_range(
    client: Client,
    key: str,
    count: int,
    *,
    first: str = "-",
    last: str = "+",
    newest_first: bool = False,
) -> list[StreamEntry]:
    """XRANGE (or XREVRANGE) as typed entries (call inside `redis_errors`)."""
    if newest_first:
        return cast(list[StreamEntry], client.xrevrange(key, last, first, count=count))
    return cast(list[StreamEntry], client.xrange(key, first, last, count=count))
