"""The leader lease against a real Redis: who may lead, and what a deposed leader may
still write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleetscale.config import RedisSettings
from fleetscale.controller.leader import Leadership, lease_id
from fleetscale.controller.policy import Policy
from fleetscale.controller.policystore import PolicyStore
from fleetscale.controller.reconciler import ControllerSettings, Reconciler, seed_policy
from fleetscale.controller.supervisor import Supervisor, SupervisorSettings
from fleetscale.jobstream import JobStream
from fleetscale.keys import FleetKeys
from fleetscale.store import Client
from tests.support.launcher import FakeLauncher


class Controllers:
    """In-process controllers of one fleet whose workers are stand-ins; all stopped at
    the end."""

    def __init__(self, client: Client, keys: FleetKeys, url: str) -> None:
        self.client, self.keys, self.url = client, keys, url
        self.started: list[Reconciler] = []
        JobStream(client, keys, url).ensure_group()

    def start(self, host_id: str, *, dry_run: bool = False, host_ttl_s: float = 5) -> Reconciler:
        """A registered controller for `host_id` (capacity 4) that has not led yet; it
        waits for another controller's registration of `host_id` to lapse."""
        policy, _ = seed_policy(PolicyStore(self.client, self.keys, self.url),
                                Policy(min=2, max=8))  # fmt: skip
        settings = ControllerSettings(
            host_id=host_id, capacity=4, dry_run=dry_run, host_ttl_s=host_ttl_s
        )
        candidate = lease_id(host_id, standby=dry_run)
        rec = Reconciler(
            client=self.client, keys=self.keys, url=self.url, settings=settings,
            supervisor=Supervisor(FakeLauncher(), SupervisorSettings(warm=0, stop_grace_s=2)),
            leadership=Leadership(self.client, self.keys, self.url, candidate, ttl_s=5),
            policy=policy,
        )  # fmt: skip
        assert rec.claim_host(wait_s=30)
        self.started.append(rec)
        return rec

    def stop_all(self) -> None:
        for rec in self.started:
            rec.supervisor.stop_all()


@pytest.fixture
def controllers(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> Iterator[Controllers]:
    group = Controllers(client, keys, redis_settings.url)
    yield group
    group.stop_all()


def test_a_real_controller_takes_the_lead_from_a_dry_run_one_and_its_host_gets_a_quota(
    controllers: Controllers,
) -> None:
    dry = controllers.start("recommender", dry_run=True)
    real = controllers.start("worker-host")
    dry.lead()
    assert dry.lease.leading, "a dry run leads a fleet with no real leader"
    real.lead()
    assert real.lease.leading, (
        "a real controller must not wait behind a dry run, which writes no plan"
    )
    dry.lead()
    assert not dry.lease.leading
    real.decide()
    real.converge()
    assert real.quota == 2, f"the real host runs the fleet's min of 2, not {real.quota}"


def test_a_dry_run_controller_never_takes_the_lead_from_a_real_one(
    controllers: Controllers,
) -> None:
    real = controllers.start("worker-host")
    dry = controllers.start("recommender", dry_run=True)
    real.lead()
    for _ in range(3):
        dry.lead()
        assert not dry.lease.leading
    real.lead()
    assert real.lease.leading


def test_a_deposed_leader_cannot_publish_the_decision_it_had_in_flight(
    controllers: Controllers, client: Client, keys: FleetKeys
) -> None:
    old = controllers.start("a")
    old.lead()
    old.decide()
    client.delete(keys.leader)  # its lease ran out while it was paused
    new = controllers.start("b")
    new.lead()
    new.decide()
    published = new.plans.read()
    old.decide()  # wakes up and finishes the decision it had started
    assert old.plans.read() == published, "the successor's plan stands"
    assert not old.lease.leading, "a leader refused by the fence knows it no longer leads"


def test_a_leader_that_retakes_a_lapsed_lease_after_a_successor_resumes_the_successors_plan(
    controllers: Controllers, client: Client, keys: FleetKeys
) -> None:
    a, b = controllers.start("a"), controllers.start("b")
    a.lead()
    a.decide()
    assert a.plans.read().quotas == {"a": 1, "b": 1}  # type: ignore[union-attr]
    client.delete(keys.leader)  # a is paused past its lease; b leads meanwhile
    b.lead()
    a.hosts.remove("a")  # a's registration lapses too
    b.decide()
    a.heartbeat()  # a is back: sticky quotas leave its share on b
    b.decide()
    moved = b.plans.read()
    assert moved is not None and moved.quotas == {"a": 0, "b": 2}, moved
    b.leadership.resign()  # b hands over before a ever saw it lead
    a.lead()
    assert a.lease.leading
    a.decide()
    plan = a.plans.read()
    assert plan is not None and plan.quotas == moved.quotas, (
        "a new term starts from the stored plan, not the leader's own stale one: "
        f"workers moved between hosts with nothing changed ({moved.quotas} → {plan.quotas})"
    )


def test_a_controller_stopping_after_its_host_id_was_taken_over_leaves_the_new_owner_registered(
    controllers: Controllers, client: Client, keys: FleetKeys
) -> None:
    old = controllers.start("h", host_ttl_s=0.5)
    new = controllers.start("h")  # the old one was paused past its registration
    old.shutdown()  # stopped (SIGTERM) before its next heartbeat found it displaced
    owner = client.hget(keys.host("h"), "owner")
    assert owner == new.leadership.candidate.encode(), (
        "the old controller unregistered the new one's host: its quota moves away"
    )
