"""At maxmemory (noeviction) the leader still publishes its plan: a full queue is when
the fleet must grow to drain it, and a refused plan held it at its size."""

from __future__ import annotations

import pytest
import redis

from fleetscale.config import RedisSettings
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.controller.plan import Plan, PlanStore
from fleetscale.controller.policy import State
from fleetscale.embedded import EmbeddedRedis
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.store import connect


def test_at_maxmemory_the_leader_publishes_a_scale_up_and_logs_it(
    private_redis: EmbeddedRedis,
) -> None:
    keys = FleetKeys("full")
    client = connect(RedisSettings(url=private_redis.url, retries=0))
    JobStream(client, keys, private_redis.url).ensure_group()
    me = lease_id("a")
    lease = Leadership(client, keys, private_redis.url, me, ttl_s=30).attempt()
    assert lease.leading
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 2_000_000)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        while True:  # a backlog producers filled memory with, none of it delivered yet
            client.xadd(keys.jobs, {"j": b"x" * 1000})

    plans = PlanStore(client, keys, private_redis.url)
    for desired in range(1, 300):
        plan = Plan(lease.token, "a", desired, {"a": desired}, "backlog", 0.0, 1, State())
        assert plans.publish(me, lease.token, plan, {"desired": desired})
    stored = plans.read()
    assert stored is not None and stored.desired == 299
    assert plans.decisions(1) == [{"desired": 299}]
