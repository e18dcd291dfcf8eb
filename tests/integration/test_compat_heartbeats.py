"""Rolling upgrades: the leader and `status` read the heartbeats of hosts and workers
that run another fleetscale version."""

from __future__ import annotations

from fleetscale.config import RedisSettings
from fleetscale.controller.observe import host_view
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.registry import LiveSet
from fleetscale.status import read_status
from fleetscale.store import Client


def _register(client: Client, keys: FleetKeys, host: str, fields: dict[str, str]) -> None:
    """A host heartbeat as another version's controller could have written it."""
    expiry_ms = (int(client.time()[0]) + 60) * 1000
    client.zadd(keys.hosts, {host: expiry_ms})
    client.hset(keys.host(host), mapping=fields)


def test_host_counts_written_as_decimals_are_read_as_whole_workers(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    Producer(keys.fleet, redis_settings.url).submit("job", (1,))
    _register(client, keys, "new", {"host": "new", "capacity": "2.5", "running": "2.0",
                                     "ready": "1", "quota": "2.0", "zone": "eu"})  # fmt: skip
    (member,) = LiveSet(client, redis_settings.url, keys.hosts, keys.host).live()
    view = host_view(member)
    assert (view.capacity, view.running, view.ready) == (2, 2, 1), "not a host of capacity 0"
    (row,) = read_status(client, keys, redis_settings.url)["hosts"]
    assert (row["capacity"], row["running"], row["quota"]) == (2, 2, 2)


def test_a_host_field_that_is_no_number_reads_as_unknown_not_a_traceback(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    Producer(keys.fleet, redis_settings.url).submit("job", (1,))
    _register(client, keys, "new", {"host": "new", "running": "3", "quota": "auto",
                                     "warm": "n/a"})  # fmt: skip
    (row,) = read_status(client, keys, redis_settings.url)["hosts"]
    assert (row["running"], row["quota"], row["warm"], row["capacity"]) == (3, None, 0, 0)


def test_a_host_taking_over_a_registration_keeps_none_of_the_other_versions_fields(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    # A registration without an owner (a version from before the owner check) is taken
    # over at once; heartbeat.lua only added fields, so "zone" stayed for good.
    _register(client, keys, "h1", {"host": "h1", "running": "3", "zone": "eu"})
    hosts = LiveSet(client, redis_settings.url, keys.hosts, keys.host)
    hosts.heartbeat("h1", 60, {"host": "h1", "running": 1}, owner="h1#new")
    (member,) = hosts.live()
    assert {k: v for k, v in member.fields.items() if k != "seen_ms"} == {
        "host": "h1", "running": "1", "owner": "h1#new"}  # fmt: skip
