"""The reconciler in-process against a real Redis: the cost of a tick, trimming, clean-up."""

from __future__ import annotations

import json
import math
import threading

import pytest

from fleetscale.config import RedisSettings
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.controller.policy import Policy
from fleetscale.controller.policystore import PolicyStore
from fleetscale.controller.reconciler import ControllerSettings, Reconciler, seed_policy
from fleetscale.controller.supervisor import Supervisor, SupervisorSettings, WorkerHandle
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import FleetscaleError
from fleetscale.jobstream import JobStream
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.metrics import PrometheusRecorder
from fleetscale.producer import Producer
from fleetscale.registry import MemberTaken, Registry
from fleetscale.store import Client, connect
from fleetscale.telemetry import TelemetryFlusher, WindowDelta
from tests.support.launcher import FakeLauncher
from tests.support.procs import wait_until


def reconciler(
    client: Client,
    keys: FleetKeys,
    url: str,
    *,
    consumer_idle_s: float = 600.0,
    supervisor: Supervisor | None = None,
    lease_ttl_s: float = 5,
    recorder: PrometheusRecorder | None = None,
) -> Reconciler:
    """A reconciler whose workers are stand-ins (no Redis of their own)."""
    store = PolicyStore(client, keys, url)
    policy, _ = seed_policy(store, Policy(min=0, max=8))
    return Reconciler(
        client=client,
        keys=keys,
        url=url,
        settings=ControllerSettings(host_id="h1", capacity=8, consumer_idle_s=consumer_idle_s),
        supervisor=supervisor
        or Supervisor(FakeLauncher(), SupervisorSettings(warm=0, stop_grace_s=2)),
        leadership=Leadership(client, keys, url, lease_id("h1"), ttl_s=lease_ttl_s),
        policy=policy,
        recorder=recorder,
    )


def fake_workers(client: Client, keys: FleetKeys, url: str, count: int) -> None:
    """`count` workers that heartbeat and flushed telemetry for each of the last 15 s."""
    now_s = int(client.time()[0])
    registry = Registry(client, keys, url)
    for i in range(count):
        worker = f"fake:{i}:0"
        registry.heartbeat(worker, 60, {"host": "h1", "state": "running"})
        flusher = TelemetryFlusher(client, keys, worker, url)
        windows = {}
        for w in range(now_s - 15, now_s):
            delta = WindowDelta(busy_us=500_000, up_us=1_000_000, done=10, samples=1)
            delta.wait.record(0.01 * (1 + i % 7), 10)
            windows[w] = delta
        flusher._send(1, windows)


def lead_and_run_one_worker(rec: Reconciler) -> WorkerHandle:
    """Lead, decide (under a policy with min=1) and converge to the plan's one worker."""
    rec.lead()
    rec.heartbeat()
    rec.decide()
    wait_until(lambda: rec.converge() or rec.supervisor.counts().ready == 1, timeout_s=20,
               what="the plan's one worker")  # fmt: skip
    (worker,) = rec.supervisor.workers
    return worker


def commands_per_tick(client: Client, rec: Reconciler) -> int:
    client.config_resetstat()
    for duty in (rec.lead, rec.heartbeat, rec.promote, rec.decide, rec.converge):
        duty()
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


@pytest.mark.timeout(180)
def test_redis_commands_per_decision_tick_do_not_grow_with_the_number_of_workers(
    private_redis: EmbeddedRedis,
) -> None:
    counts = {}
    for workers in (10, 1000):
        keys = FleetKeys(f"scale-{workers}")
        client = connect(RedisSettings(url=private_redis.url))
        JobStream(client, keys, private_redis.url).ensure_group()
        Producer(keys.fleet, private_redis.url).submit_many([("noop", (), {})] * 50)
        fake_workers(client, keys, private_redis.url, workers)
        rec = reconciler(client, keys, private_redis.url)
        try:
            commands_per_tick(client, rec)  # first tick: takes the lease, loads the state
            counts[workers] = commands_per_tick(client, rec)
        finally:
            rec.supervisor.stop_all()
    print(f"Redis commands per tick (scripts' inner commands included): {counts}")
    assert counts[10] == counts[1000]


def test_a_fleet_without_workers_gets_its_due_delayed_job_and_starts_for_it(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    JobStream(client, keys, redis_settings.url).ensure_group()
    Producer(fleet, redis_settings.url).submit("noop", delay_s=0.2)
    rec = reconciler(client, keys, redis_settings.url)
    try:
        rec.lead()
        rec.promote()
        assert client.xlen(keys.jobs) == 0, "not due yet"
        wait_until(lambda: rec.promote() is None and client.xlen(keys.jobs) == 1,
                   timeout_s=5, what="the delayed job to be promoted")  # fmt: skip
        assert client.zcard(keys.delayed) == 0
        rec.heartbeat()
        rec.decide()
        plan = rec.plans.read()
        assert plan is not None
        assert (plan.desired, plan.reason) == (1, "scale_from_zero"), plan
    finally:
        rec.supervisor.stop_all()


def test_trimming_removes_only_acknowledged_entries(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    stream = JobStream(client, keys, redis_settings.url)
    stream.ensure_group()
    Producer(fleet, redis_settings.url).submit_many([("noop", (), {})] * 10)
    delivered = stream.fetch("w1", 6, None)
    client.xack(
        keys.jobs, GROUP, *[d.entry_id for d in delivered[:4]]
    )  # 4 acked, 2 pending, 4 undelivered
    rec = reconciler(client, keys, redis_settings.url)
    rec.lead()
    rec.trim()
    remaining = [eid for eid, _ in client.xrange(keys.jobs)]
    assert len(remaining) == 6, "the 2 pending and 4 undelivered entries stay"
    assert remaining[:2] == [d.entry_id for d in delivered[4:]]


def test_clean_up_never_deletes_a_consumer_with_pending_entries(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    stream = JobStream(client, keys, redis_settings.url)
    stream.ensure_group()
    Producer(fleet, redis_settings.url).submit_many([("noop", (), {})] * 2)
    stream.fetch("holder", 1, None)
    stream.fetch("idle", 1, None)
    client.xack(
        keys.jobs,
        GROUP,
        client.xpending_range(keys.jobs, GROUP, "-", "+", 10, "idle")[0]["message_id"],
    )
    rec = reconciler(client, keys, redis_settings.url, consumer_idle_s=0.0)
    rec.lead()
    rec.cleanup()
    names = {c["name"] for c in client.xinfo_consumers(keys.jobs, GROUP)}
    assert names == {b"holder"}


def one_host_id_twice(client: Client, keys: FleetKeys, url: str) -> tuple[Reconciler, Reconciler]:
    """Two controllers for host id h1, the first of them registered."""
    first, second = reconciler(client, keys, url), reconciler(client, keys, url)
    first.claim_host(wait_s=0)
    return first, second


def test_a_second_controller_with_the_same_host_id_is_refused_and_the_first_keeps_it(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    first, second = one_host_id_twice(client, keys, redis_settings.url)
    with pytest.raises(MemberTaken, match="'h1' is in use by another live controller"):
        second.claim_host(wait_s=0)
    second.reconcile_once(second.monotonic() + 60)
    assert second.displaced is not None, "a controller whose host id is taken stops"
    second.shutdown()
    first.heartbeat()
    assert client.hget(keys.host("h1"), "owner") == first.leadership.candidate.encode()


def test_a_leader_decides_under_a_policy_holding_a_key_it_does_not_know(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    stored = {"version": 3, "policy": {"min": 2, "max": 8, "future_knob": 1}}
    client.set(keys.policy, json.dumps(stored))
    JobStream(client, keys, redis_settings.url).ensure_group()
    rec = reconciler(client, keys, redis_settings.url)
    try:
        rec.lead()
        rec.heartbeat()
        rec.decide()
        plan = rec.plans.read()
        assert rec.policy.version == 3
        assert plan is not None and plan.desired == 2, plan  # the stored min, not the flags'
    finally:
        rec.supervisor.stop_all()


def sample(recorder: PrometheusRecorder, name: str) -> float:
    value = recorder.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_a_leader_cut_off_from_redis_stops_exporting_itself_as_leader_once_its_lease_expires(
    private_redis: EmbeddedRedis,
) -> None:
    keys = FleetKeys("cut-off")
    client = connect(RedisSettings(url=private_redis.url, retries=0, socket_timeout_s=0.5))
    JobStream(client, keys, private_redis.url).ensure_group()
    clock = [1000.0]
    recorder = PrometheusRecorder("h1")
    assert math.isnan(sample(recorder, "fleetscale_recommended_workers")), "unknown, not 0"
    assert sample(recorder, "fleetscale_controller_leader") == 0
    policy, _ = seed_policy(PolicyStore(client, keys, private_redis.url), Policy(min=2))
    rec = Reconciler(
        client=client, keys=keys, url=private_redis.url,
        settings=ControllerSettings(host_id="h1", capacity=8),
        supervisor=Supervisor(FakeLauncher(), SupervisorSettings(warm=0, stop_grace_s=2)),
        leadership=Leadership(client, keys, private_redis.url, lease_id("h1"), ttl_s=5),
        policy=policy, recorder=recorder, monotonic=lambda: clock[0],
    )  # fmt: skip
    rec.lead()
    rec.heartbeat()
    rec.decide()
    assert sample(recorder, "fleetscale_controller_leader") == 1
    assert sample(recorder, "fleetscale_recommended_workers") == 2

    private_redis.kill()
    with pytest.raises(FleetscaleError):
        rec.decide()
    assert math.isnan(sample(recorder, "fleetscale_queue_backlog_jobs")), "no stale figures"
    with pytest.raises(FleetscaleError):
        rec.lead()
    assert rec.lease.leading, "within its lease it may still lead"
    clock[0] += 5.0
    with pytest.raises(FleetscaleError):
        rec.lead()
    assert not rec.lease.leading
    assert sample(recorder, "fleetscale_controller_leader") == 0
    assert math.isnan(sample(recorder, "fleetscale_recommended_workers"))


@pytest.mark.timeout(60)
def test_with_redis_unreachable_a_worker_that_ignores_sigterm_is_still_killed_after_the_grace(
    private_redis: EmbeddedRedis,
) -> None:
    keys = FleetKeys("unreachable")
    client = connect(RedisSettings(url=private_redis.url, retries=0, socket_timeout_s=0.5))
    policy, _ = seed_policy(PolicyStore(client, keys, private_redis.url), Policy(min=1))
    sup = Supervisor(FakeLauncher(mode="stubborn"), SupervisorSettings(warm=0, stop_grace_s=0.5))
    rec = Reconciler(
        client=client, keys=keys, url=private_redis.url,
        settings=ControllerSettings(host_id="h1", capacity=4), supervisor=sup,
        leadership=Leadership(client, keys, private_redis.url, lease_id("h1"), ttl_s=5),
        policy=policy,
    )  # fmt: skip
    try:
        worker = lead_and_run_one_worker(rec)
        sup.ensure(0)  # a scale-down under way: the worker was sent SIGTERM, ignores it
        private_redis.kill()

        def killed() -> bool:
            with pytest.raises(FleetscaleError):
                rec.converge()
            return worker.process.poll() is not None

        wait_until(killed, timeout_s=15, what="the stubborn worker to be killed")
        assert worker.process.poll() == -9
        assert rec.quota is None, "no plan could be read: the host holds"
    finally:
        sup.stop_all(grace_s=1.0)


@pytest.mark.parametrize(
    "stored",
    [
        json.dumps({"version": 4, "policy": {"min": "lots", "max": 8}}),  # a bad value
        json.dumps({"version": 4, "policy": {"min": 5, "max": 3}}),  # min > max
        '{"version": 4, "policy": ',  # cut off
    ],
)
def test_a_bad_stored_policy_is_refused_and_the_leader_goes_on_under_the_last_good_one(
    stored: str, fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    JobStream(client, keys, redis_settings.url).ensure_group()
    rec = reconciler(client, keys, redis_settings.url)
    try:
        PolicyStore(client, keys, redis_settings.url).update({"min": "2"})
        rec.lead()
        rec.heartbeat()
        rec.decide()
        assert rec.policy.version == 2
        client.set(keys.policy, stored)  # say, written by a newer version or by hand
        client.delete(keys.plan)
        rec.decide()
        plan = rec.plans.read()
        assert plan is not None, "the leader went on deciding"
        assert (plan.policy_version, plan.desired) == (2, 2), "under the last good policy"
    finally:
        rec.supervisor.stop_all()


@pytest.mark.timeout(60)
def test_a_leader_that_shuts_down_hands_over_the_lead_before_its_workers_have_drained(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    JobStream(client, keys, redis_settings.url).ensure_group()
    sup = Supervisor(FakeLauncher(mode="stubborn"), SupervisorSettings(warm=0, stop_grace_s=30))
    recorder = PrometheusRecorder("h1")
    rec = reconciler(
        client, keys, redis_settings.url, supervisor=sup, lease_ttl_s=60, recorder=recorder
    )
    PolicyStore(client, keys, redis_settings.url).update({"min": "1"})
    worker = lead_and_run_one_worker(rec)
    assert sample(recorder, "fleetscale_controller_leader") == 1
    shutdown = threading.Thread(target=rec.shutdown)
    shutdown.start()
    try:
        # The worker drains for up to its 30 s grace; the lease would last 60 s.
        wait_until(lambda: client.get(keys.leader) is None, timeout_s=10,
                   what="the lead to be handed over")  # fmt: skip
        assert worker.process.poll() is None, "before the worker has drained"
        # Nor does it go on exporting itself as the leader while it drains.
        assert sample(recorder, "fleetscale_controller_leader") == 0
        assert math.isnan(sample(recorder, "fleetscale_recommended_workers"))
    finally:
        worker.process.kill()
        shutdown.join()


def test_a_controller_stopped_while_it_waits_for_its_host_id_leaves_at_once_and_unregisters_nothing(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    first, second = one_host_id_twice(client, keys, redis_settings.url)
    stop = threading.Event()
    outcome: list[bool] = []
    waiting = threading.Thread(target=lambda: outcome.append(second.claim_host(600, stop)))
    waiting.start()
    stop.set()
    waiting.join(timeout=10)
    assert outcome == [False], "stopped, not claimed and not still waiting"
    assert client.hget(keys.host("h1"), "owner") == first.leadership.candidate.encode()
