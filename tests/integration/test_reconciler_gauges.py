"""The host's gauges follow what the controller knows, also when it knows less."""

from __future__ import annotations

import math

import pytest

from fleetscale.config import RedisSettings
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.controller.policy import Policy
from fleetscale.controller.policystore import PolicyStore
from fleetscale.controller.reconciler import ControllerSettings, Reconciler, seed_policy
from fleetscale.controller.supervisor import Supervisor, SupervisorSettings
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import FleetscaleError
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.metrics import PrometheusRecorder
from fleetscale.store import connect
from tests.support.launcher import FakeLauncher
from tests.support.procs import wait_until


def gauge(recorder: PrometheusRecorder, name: str, **labels: str) -> float:
    value = recorder.registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


def led_host(server: EmbeddedRedis, recorder: PrometheusRecorder) -> Reconciler:
    """A controller leading a fleet of min 2 that it has converged to."""
    keys = FleetKeys("gauges")
    client = connect(RedisSettings(url=server.url, retries=0, socket_timeout_s=0.5))
    JobStream(client, keys, server.url).ensure_group()
    policy, _ = seed_policy(PolicyStore(client, keys, server.url), Policy(min=2, max=8))
    rec = Reconciler(
        client=client, keys=keys, url=server.url,
        settings=ControllerSettings(host_id="h1", capacity=8),
        supervisor=Supervisor(FakeLauncher(), SupervisorSettings(warm=0, stop_grace_s=2)),
        leadership=Leadership(client, keys, server.url, lease_id("h1"), ttl_s=5),
        policy=policy, recorder=recorder,
    )  # fmt: skip
    rec.lead()
    rec.heartbeat()
    rec.decide()
    wait_until(lambda: rec.converge() or rec.supervisor.counts().ready == 2, timeout_s=20,
               what="the plan's two workers")  # fmt: skip
    rec.heartbeat()
    return rec


def test_a_host_whose_plan_is_gone_exports_the_desired_size_as_unknown(
    private_redis: EmbeddedRedis,
) -> None:
    recorder = PrometheusRecorder("h1")
    rec = led_host(private_redis, recorder)
    assert gauge(recorder, "fleetscale_workers_desired") == 2
    rec.client.delete(rec.keys.plan)
    rec.converge()
    rec.heartbeat()
    assert math.isnan(gauge(recorder, "fleetscale_host_quota_workers", host="h1"))
    assert math.isnan(gauge(recorder, "fleetscale_workers_desired")), "not the last plan's 2"


def test_with_redis_away_the_host_gauges_still_count_its_workers(
    private_redis: EmbeddedRedis,
) -> None:
    recorder = PrometheusRecorder("h1")
    rec = led_host(private_redis, recorder)
    assert gauge(recorder, "fleetscale_workers_running", host="h1") == 2
    private_redis.kill()
    for worker in rec.supervisor.workers:
        worker.process.kill()  # the supervisor sees them go; Redis sees nothing

    def reaped() -> bool:
        rec.supervisor.reap()
        return rec.supervisor.counts().running == 0

    wait_until(reaped, timeout_s=20, what="the supervisor to count the exits")
    with pytest.raises(FleetscaleError):
        rec.heartbeat()
    assert gauge(recorder, "fleetscale_workers_running", host="h1") == 0
