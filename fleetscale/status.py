"""The status of a fleet, as `fleetscale status` prints it: one place that composes
the fleet view, the live workers by host and the dead-letter count."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fleetscale.config import redact_url
from fleetscale.deadletters import DeadLetters
from fleetscale.errors import ConfigurationError
from fleetscale.fleetview import read_fleet_view
from fleetscale.keys import FleetKeys
from fleetscale.registry import Member, Registry
from fleetscale.store import Client, redis_errors


def hosts_of(workers: list[Member]) -> list[dict[str, Any]]:
    """Per-host worker counts: `running` (alive) and `ready` (taking jobs)."""
    running = Counter(w.host for w in workers)
    ready = Counter(w.host for w in workers if w.fields.get("state") == "running")
    return [
        {"host": host, "running": running[host], "ready": ready[host], "quota": None}
        for host in sorted(running)
    ]


def read_status(
    client: Client, keys: FleetKeys, url: str, window_s: float = 10.0
) -> dict[str, Any]:
    """Everything `status --json` reports (field names documented in the README).

    Raises:
        ConfigurationError: the fleet has no trace in this Redis (a likely typo).
    """
    with redis_errors(url):
        known = client.exists(keys.jobs, keys.workers, keys.dlq)
    if not known:
        raise ConfigurationError(
            f"unknown fleet {keys.fleet!r}: nothing of it in Redis at {redact_url(url)}; "
            "check the fleet name and --redis-url"
        )
    view = read_fleet_view(client, keys, url, window_s)
    workers = Registry(client, keys, url).live()
    return {
        "fleet": keys.fleet,
        "leader": None,
        "hosts": hosts_of(workers),
        "workers": {
            "desired": None,
            "running": len(workers),
            "ready": sum(w.fields.get("state") == "running" for w in workers),
        },
        **{k: v for k, v in view.to_dict().items() if k != "fleet"},
        "dead_letters": DeadLetters(client, keys, url).count(),
        "policy": None,
    }
