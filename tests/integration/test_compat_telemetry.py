"""Rolling upgrades: the leader and `status` read telemetry that workers and readers of
another fleetscale version wrote into the same Redis."""

from __future__ import annotations

from fleetscale.config import RedisSettings
from fleetscale.fleetview import read_fleet_view
from fleetscale.histogram import BUCKET_COUNT, bucket_index, bucket_value
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client


def _now_s(client: Client) -> int:
    return int(client.time()[0])


def test_a_telemetry_window_with_fields_of_another_version_is_read_skipping_them(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    wait = bucket_index(0.2)
    client.hset(
        keys.telemetry(_now_s(client) - 3),
        mapping={
            f"w:{wait}": 10,
            "samples": 1,
            "busy_us": 500_000,
            "up_us": 1_000_000,
            "done": 5,
            "cost_usd": "0.25",  # a newer version's field, not an integer
            "w:p9": 4,  # a bucket name this version does not know
            f"w:{BUCKET_COUNT + 40}": 1000,  # a finer layout's bucket: not 10 minutes
            f"r:{BUCKET_COUNT}": 7,
        },
    )
    view = read_fleet_view(client, keys, redis_settings.url)
    assert view.wait_p99_s == bucket_value(wait), "only this layout's buckets count"
    assert view.wait_samples == 10


def test_an_arrival_sample_of_another_format_leaves_the_rate_unknown_not_a_crash(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    Producer(keys.fleet, redis_settings.url).submit("job", (1,))
    past_ms = (_now_s(client) - 5) * 1000
    client.zadd(keys.arrivals, {f"{past_ms}:0.5": past_ms})
    assert read_fleet_view(client, keys, redis_settings.url).arrival_rate_per_s is None
    client.delete(keys.arrivals)
    client.zadd(keys.arrivals, {f"{past_ms}:0:shard-a": past_ms})
    rate = read_fleet_view(client, keys, redis_settings.url).arrival_rate_per_s
    assert rate is not None and rate > 0, "the first two parts are the sample"
