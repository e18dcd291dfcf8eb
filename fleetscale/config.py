"""Settings: frozen dataclasses with their defaults in one place and one `validate()` each.

Units are in the names (`_s` seconds, `_ms` milliseconds, `_bytes`). Nothing here reads
the environment at import; `resolve_redis_url` takes the environment as an argument.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from redis.connection import SSLConnection

from fleetscale.errors import ConfigurationError

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
REDIS_URL_ENV = "FLEETSCALE_REDIS_URL"
URL_SOURCE_ENV = "FLEETSCALE_URL_SOURCE"
"""Names the flag that set `REDIS_URL_ENV` for a process started with it (a controller
sets both for its workers), in the hint of an unreachable Redis."""
MIB = 1024 * 1024
DEFAULT_DEDUP_TTL_S = 86_400.0

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^:@/?#]*):.*@")
_ENCODE_HINT = "percent-encode # / ? @ : in the user name and password (# as %23, / as %2F)"
_QUERY_PASSWORD = re.compile(r"([?&][a-z_]*password=)[^&#]*")
_URL_OPTIONS = frozenset({"db", "client_name", "max_connections", "socket_read_size"})
"""Query parameters a Redis URL may carry besides the TLS ones. redis-py lets the URL's
query override any client argument, so `?socket_timeout=` would undo the bounded
timeouts, and `?decode_responses=` or `?protocol=` would change the replies fleetscale
parses; those are refused."""

_TLS_OPTIONS = frozenset(
    name for name in inspect.signature(SSLConnection.__init__).parameters if name.startswith("ssl_")
)
"""The `ssl_*` query parameters a `rediss://` URL may carry: those redis-py's TLS
connection takes (another would fail at the first command)."""


def parse_duration(text: str | float | int) -> float:
    """Parse `250ms`, `2s`, `1m`, `1h` or a plain number of seconds; return seconds.

    Raises:
        ConfigurationError: for anything else, or a negative or non-finite value.
    """
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ConfigurationError(
                f"bad duration {text!r}: use a number of seconds or 250ms, 2s, 1m, 1h"
            )
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"bad duration {text!r}: must be a finite value ≥ 0")
    return seconds


def resolve_redis_url(explicit: str | None, environ: Mapping[str, str]) -> str:
    """Pick the Redis URL: explicit argument > `FLEETSCALE_REDIS_URL` > the default."""
    return explicit or environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by `***`, safe for logs and errors.

    Never raises. A password holding an unencoded `#`, `/` or `?` ends the host part
    for a URL parser, which then sees no password at all (found by the fault suite: the
    whole password was printed in 'Redis at … is unreachable'); such a URL is redacted
    from the user name up to its last `@`. A `password=` query parameter (which redis-py
    would take, and `RedisSettings.validate` refuses) is redacted too.
    """
    return _QUERY_PASSWORD.sub(r"\1***", _redact_userinfo(url))


def _redact_userinfo(url: str) -> str:
    if _misread_userinfo(url):
        return _USERINFO.sub(r"\1\2:***@", url, count=1)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return _USERINFO.sub(r"\1\2:***@", url, count=1)
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _misread_userinfo(url: str) -> bool:
    """Whether the URL has an `@` that a URL parser does not take as the end of the
    user info (a password with an unencoded `#`, `/` or `?`), other than inside a
    `key=value` query."""
    start, at = url.find("://") + 3, url.rfind("@")
    if start < 3 or at < start or "@" in urlsplit(url).netloc:
        return False
    return "=" not in url[start:at].partition("?")[2]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def _check_url_options(scheme: str, query: str, shown: str) -> None:
    """Refuse URL query parameters that would override what fleetscale sets itself,
    and TLS options redis-py does not know or a URL without TLS cannot use."""
    names = sorted({name for name, _ in parse_qsl(query, keep_blank_values=True)})
    tls = [n for n in names if n in _TLS_OPTIONS]
    _require(
        not tls or scheme == "rediss",
        f"bad Redis URL {shown!r}: {', '.join(tls)} need TLS; use rediss://",
    )
    refused = [n for n in names if n not in _URL_OPTIONS and n not in _TLS_OPTIONS]
    if {"username", "password"} & set(refused):
        raise ConfigurationError(
            f"bad Redis URL {shown!r}: put the user and password before the host, "
            "redis://USER:PASSWORD@HOST:PORT/DB, not in the query"
        )
    _require(
        not refused,
        f"bad Redis URL {shown!r}: remove {', '.join(refused)} from its query; fleetscale "
        "sets its own timeouts, retries and reply format (the query may hold "
        f"{', '.join(sorted(_URL_OPTIONS))} and, with rediss://, redis-py's ssl_* options)",
    )


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """How to reach Redis, with every timeout and retry bounded.

    redis-py's defaults can hang for minutes on a host cut off by a firewall; these
    bound one command to about `retries + 1` × `socket_timeout_s` plus backoff.

    Attributes:
        url: `redis://` or `rediss://` URL, with ACL user and password if any.
        socket_timeout_s: per-command read timeout, seconds. Blocking reads add their
            block time on top.
        connect_timeout_s: TCP/TLS connect timeout, seconds.
        retries: retries of a failed command on a fresh connection.
        retry_backoff_cap_s: the longest pause between those retries, seconds.
        health_check_interval_s: idle seconds after which a connection is pinged first.
    """

    url: str = DEFAULT_REDIS_URL
    socket_timeout_s: float = 2.0
    connect_timeout_s: float = 1.5
    retries: int = 1
    retry_backoff_cap_s: float = 0.25
    health_check_interval_s: float = 15.0

    def validate(self) -> RedisSettings:
        """Check every field; return self so calls chain. Raises ConfigurationError."""
        shown = redact_url(self.url)
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ConfigurationError(
                f"bad Redis URL {shown!r}: its port is not a number; {_ENCODE_HINT}"
            ) from None
        _require(
            parts.scheme in ("redis", "rediss", "unix"),
            f"bad Redis URL {shown!r}: use redis://, rediss:// or unix://",
        )
        _require(
            not _misread_userinfo(self.url),
            f"bad Redis URL {shown!r}: a character in the password ends the host part; "
            + _ENCODE_HINT,
        )
        _require(
            parts.scheme == "unix" or re.fullmatch(r"/?\d*", parts.path) is not None,
            f"bad Redis URL {shown!r}: after the host comes /DB, a database number "
            f"(e.g. /0), not {parts.path!r}",
        )
        _check_url_options(parts.scheme, parts.query, shown)
        _require(self.socket_timeout_s > 0, "socket_timeout_s must be > 0")
        _require(self.connect_timeout_s > 0, "connect_timeout_s must be > 0")
        _require(0 <= self.retries <= 5, "retries must be between 0 and 5")
        return self

    @property
    def redacted_url(self) -> str:
        """The URL without its password, for logs, status and errors."""
        return redact_url(self.url)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker process consumes, retries, reclaims and reports.

    Attributes:
        block_ms: how long one read blocks waiting for new jobs, milliseconds.
        prefetch_window_s: a fetch takes at most as many jobs as the worker expects to
            start within this many seconds (from its measured run time), so a prefetched
            batch never hides load from the scaler or from other workers. No-op jobs are
            fetched up to `max_batch` at once; 50 ms jobs one at a time.
        max_batch: the most jobs one fetch takes.
        min_idle_s: a pending job idle this long is presumed abandoned and reclaimed.
        reclaim_every_s: how often the worker looks for abandoned jobs (0: a third of
            `min_idle_s`, at most 5 s), seconds.
        lease_renew_s: how often a running job's lease is renewed; must be well under
            `min_idle_s` (0: a third of it).
        renew_leases: renew the leases of held entries. Off, a job running longer than
            `min_idle_s` is reclaimed and run again by another worker while it still
            runs (what queues without leases do); ownership is still checked before
            running and acking. Only for fleets whose jobs are all far shorter than
            `min_idle_s`; it saves one Redis call per `lease_renew_s` per worker.
        heartbeat_every_s: how often the worker re-registers itself.
        heartbeat_ttl_s: a worker silent this long is presumed dead.
        flush_every_s: how often telemetry deltas are written to Redis.
        sample_every: record 1 in N job waits (each sample weighs N); 0 adapts N to the
            job rate so that about `target_samples_per_s` are recorded.
        target_samples_per_s: the sampling rate the adaptive mode aims for, per worker.
        retry_base_s: backoff before the first retry; doubles per attempt, seconds.
        retry_cap_s: the longest retry backoff, seconds.
        max_payload_bytes: entries larger than this are dead-lettered unread.
        telemetry: record and flush wait/run telemetry.
        strict: refuse to start on an unsafe Redis deployment instead of warning.
        burst: exit once the stream is drained.
    """

    block_ms: int = 1000
    prefetch_window_s: float = 0.01
    max_batch: int = 256
    min_idle_s: float = 30.0
    reclaim_every_s: float = 0.0
    lease_renew_s: float = 0.0
    renew_leases: bool = True
    heartbeat_every_s: float = 2.0
    heartbeat_ttl_s: float = 10.0
    flush_every_s: float = 1.0
    sample_every: int = 0
    target_samples_per_s: float = 200.0
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    max_payload_bytes: int = MIB
    telemetry: bool = True
    strict: bool = False
    burst: bool = False

    def validate(self) -> WorkerSettings:
        """Check every field; return self so calls chain. Raises ConfigurationError."""
        _require(10 <= self.block_ms <= 60_000, "block_ms must be between 10 and 60000")
        _require(self.prefetch_window_s >= 0, "prefetch_window_s must be ≥ 0")
        _require(1 <= self.max_batch <= 10_000, "max_batch must be between 1 and 10000")
        _require(self.min_idle_s > 0, "min_idle_s must be > 0")
        _require(self.reclaim_every_s >= 0, "reclaim_every_s must be ≥ 0 (0 = derived)")
        _require(
            self.renew_every_s < self.min_idle_s,
            f"lease_renew_s={self.lease_renew_s} must be below min_idle_s={self.min_idle_s}",
        )
        _require(self.heartbeat_every_s > 0, "heartbeat_every_s must be > 0")
        _require(
            self.heartbeat_ttl_s > self.heartbeat_every_s,
            "heartbeat_ttl_s must exceed heartbeat_every_s",
        )
        _require(self.flush_every_s > 0, "flush_every_s must be > 0")
        _require(self.sample_every >= 0, "sample_every must be ≥ 0 (0 = adaptive)")
        _require(self.target_samples_per_s > 0, "target_samples_per_s must be > 0")
        _require(0 < self.retry_base_s <= self.retry_cap_s, "need 0 < retry_base_s ≤ retry_cap_s")
        _require(self.max_payload_bytes > 0, "max_payload_bytes must be > 0")
        return self

    @property
    def reclaim_period_s(self) -> float:
        """The reclaim period in effect, seconds: abandoned jobs wait for `min_idle_s`
        plus at most this."""
        return self.reclaim_every_s or min(5.0, self.min_idle_s / 3.0)

    @property
    def renew_every_s(self) -> float:
        """The lease renewal period in effect, seconds."""
        return self.lease_renew_s or self.min_idle_s / 3.0


@dataclass(frozen=True, slots=True)
class ProducerSettings:
    """Limits a producer applies before a job reaches Redis.

    Attributes:
        max_backlog: raise `Overloaded` when the fleet's backlog is at or above this
            many jobs; None for no limit.
        max_payload_bytes: the largest encoded job accepted.
        dedup_ttl_s: how long an explicit `job_id` is remembered, seconds.
        backlog_check_every_s: with `max_backlog`, how long a backlog reading is reused.
    """

    max_backlog: int | None = None
    max_payload_bytes: int = MIB
    dedup_ttl_s: float = DEFAULT_DEDUP_TTL_S
    backlog_check_every_s: float = 0.0

    def validate(self) -> ProducerSettings:
        """Check every field; return self so calls chain. Raises ConfigurationError."""
        _require(
            self.max_backlog is None or self.max_backlog > 0, "max_backlog must be > 0 or None"
        )
        _require(self.max_payload_bytes > 0, "max_payload_bytes must be > 0")
        _require(self.dedup_ttl_s >= 1, "dedup_ttl_s must be ≥ 1")
        _require(self.backlog_check_every_s >= 0, "backlog_check_every_s must be ≥ 0")
        return self
