"""The demo's load generator rides out Redis trouble: every due job goes in once."""

from __future__ import annotations

import random

import pytest

from fleetscale.codec import decode_job
from fleetscale.config import RedisSettings
from fleetscale.demo.load import Load
from fleetscale.embedded import EmbeddedRedis
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.sim.trace import Trace
from fleetscale.store import connect
from tests.support.procs import wait_until


def test_a_redis_outage_delays_the_demo_s_submits_and_loses_or_doubles_none(
    private_redis: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    trace = Trace("flat", ((0.0, 40.0),), 6.0)
    load = Load(Producer("demo-load", private_redis.url), trace)
    load.start()
    wait_until(lambda: load.submitted, what="the first submits")
    private_redis.stop()  # a clean shutdown: the AOF keeps every acknowledged job
    wait_until(lambda: getattr(load, "failed_submits", 0), what="a failed submit")
    private_redis.start()
    assert load._thread is not None
    load._thread.join(timeout=60)
    assert not load._thread.is_alive(), "the load went on to the end of its trace"
    load.stop()

    expected = {f"d{i}" for i in range(len(trace.arrival_times(random.Random(load.seed))))}
    assert set(load.submitted) == expected, "every due job was submitted, late or not"
    client = connect(RedisSettings(url=private_redis.url))
    entries = client.xrange(FleetKeys("demo-load").jobs)
    keys = [decode_job(fields, 1 << 20).args[0] for _, fields in entries]
    assert sorted(keys) == sorted(expected), "each due job is in the stream exactly once"
    assert "retried under the same job ids" in caplog.text
