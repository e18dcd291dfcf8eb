"""Prometheus metrics of controllers across a change of leader, against a real Redis."""

from __future__ import annotations

import math

from fleetscale.config import RedisSettings
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.controller.policy import Policy
from fleetscale.controller.policystore import PolicyStore
from fleetscale.controller.reconciler import ControllerSettings, Reconciler, seed_policy
from fleetscale.controller.supervisor import Supervisor, SupervisorSettings
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.metrics import PrometheusRecorder
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.launcher import FakeLauncher


def controller(
    client: Client, keys: FleetKeys, url: str, host: str, recorder: PrometheusRecorder
) -> Reconciler:
    """A controller of `host` whose workers are stand-ins."""
    policy, _ = seed_policy(PolicyStore(client, keys, url), Policy(min=2, max=8))
    return Reconciler(
        client=client, keys=keys, url=url,
        settings=ControllerSettings(host_id=host, capacity=8),
        supervisor=Supervisor(FakeLauncher(), SupervisorSettings(warm=0, stop_grace_s=2)),
        leadership=Leadership(client, keys, url, lease_id(host), ttl_s=5),
        policy=policy, recorder=recorder,
    )  # fmt: skip


def value(recorder: PrometheusRecorder, name: str) -> float:
    found = recorder.registry.get_sample_value(name)
    assert found is not None, name
    return found


FLEET_WIDE = (
    "fleetscale_recommended_workers",
    "fleetscale_queue_backlog_jobs",
    "fleetscale_queue_head_of_line_age_seconds",
    "fleetscale_dead_letters_jobs",
)


def test_a_leader_fenced_out_by_its_successor_stops_exporting_the_fleets_figures(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    url = redis_settings.url
    JobStream(client, keys, url).ensure_group()
    Producer(fleet, url).submit("job")
    first, second = PrometheusRecorder("a"), PrometheusRecorder("b")
    a = controller(client, keys, url, "a", first)
    b = controller(client, keys, url, "b", second)
    try:
        a.lead()
        a.heartbeat()
        a.decide()
        assert value(first, "fleetscale_queue_backlog_jobs") == 1
        client.delete(keys.leader)  # a paused past its lease: b takes the lead
        b.lead()
        b.heartbeat()
        b.decide()
        a.decide()  # a wakes: its plan is refused for its stale fencing token
        a.lead()
        assert not a.lease.leading and b.lease.leading
        assert value(first, "fleetscale_controller_leader") == 0
        stale = {n: value(first, n) for n in FLEET_WIDE if not math.isnan(value(first, n))}
        assert not stale, f"a follower exports the last figures it read as leader: {stale}"
        assert value(second, "fleetscale_queue_backlog_jobs") == 1
    finally:
        a.supervisor.stop_all()
        b.supervisor.stop_all()
