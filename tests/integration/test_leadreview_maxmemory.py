"""The leader lease and the host registry with Redis at maxmemory (noeviction): the
writes that keep a fleet led must still work, or the fleet stays stuck there."""

from __future__ import annotations

import pytest
import redis

from fleetscale.config import RedisSettings
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.embedded import EmbeddedRedis
from fleetscale.jobstream import JobStream
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.registry import LiveSet
from fleetscale.store import Client, connect, script

PAD = b"x" * 1000


def fill_and_drain(client: Client, keys: FleetKeys, url: str) -> int:
    """Add jobs until Redis refuses one at maxmemory, then deliver and acknowledge every
    one (as workers keep doing there). Returns how many entries the stream holds."""
    JobStream(client, keys, url).ensure_group()
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 2_000_000)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        while True:
            client.xadd(keys.jobs, {"j": PAD})
    while delivered := client.xreadgroup(GROUP, "w", {keys.jobs: ">"}, count=500):
        client.xack(keys.jobs, GROUP, *(entry_id for entry_id, _ in delivered[0][1]))
    return int(client.xlen(keys.jobs))


def test_at_maxmemory_a_controller_still_takes_a_free_lease_and_the_leaders_trim_frees_memory(
    private_redis: EmbeddedRedis,
) -> None:
    keys = FleetKeys("full")
    client = connect(RedisSettings(url=private_redis.url, retries=0))
    entries = fill_and_drain(client, keys, private_redis.url)
    # The leader died here, or was restarted: its lease is free. Without a leader no
    # one trims the acknowledged entries, and producers stay refused for good.
    successor = Leadership(client, keys, private_redis.url, lease_id("b"), ttl_s=5)
    assert successor.attempt().leading, "a successor must be able to lead at maxmemory"
    assert script(client, "trim")(keys=[keys.jobs]) == entries
    client.xadd(keys.jobs, {"j": PAD})  # producers are served again


def test_at_maxmemory_a_host_stays_registered(private_redis: EmbeddedRedis) -> None:
    keys = FleetKeys("full")
    client = connect(RedisSettings(url=private_redis.url, retries=0))
    hosts = LiveSet(client, private_redis.url, keys.hosts, keys.host)
    owner = lease_id("a")
    hosts.heartbeat("a", 5, {"capacity": 4}, owner=owner)
    fill_and_drain(client, keys, private_redis.url)
    hosts.heartbeat("a", 5, {"capacity": 4, "running": 2}, owner=owner)
    assert [m.fields["running"] for m in hosts.live()] == ["2"], (
        "a host whose heartbeat is refused drops out after its TTL and its quota moves"
    )
