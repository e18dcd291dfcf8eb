"""One host's controller loop: observe → decide → act → record, on one schedule.

`reconcile_once(now)` runs the duties that are due, each on its own period, from a
single drift-free `Schedule`; `run()` is a thin loop around it. Every host converges to
its quota in the leader's plan; only the leader decides and writes the plan; without a
fresh plan a host holds its size. Redis failures of one duty are logged once and do
not stop the others.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fleetscale.clock import RedisTimeEstimate
from fleetscale.controller.leader import Leadership, Lease, host_of
from fleetscale.controller.observe import lapsed_hosts, observation, unattended_workers
from fleetscale.controller.plan import Plan, PlanStore, decision_record
from fleetscale.controller.policy import Observation, Policy, State, decide
from fleetscale.controller.policystore import PolicyStore, VersionedPolicy
from fleetscale.controller.supervisor import Supervisor
from fleetscale.deadletters import DeadLetters
from fleetscale.duties import Duties
from fleetscale.errors import ConfigurationError, FleetscaleError
from fleetscale.fleetview import FleetView, read_fleet_view
from fleetscale.jobstream import JobStream
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.metrics import NullRecorder, Recorder
from fleetscale.registry import LiveSet, MemberTaken, Registry
from fleetscale.store import Client, redis_errors, script

log = logging.getLogger("fleetscale.controller")


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """How one host's controller runs.

    Attributes:
        host_id: this host's name in the fleet (unique per host).
        capacity: the most active workers this host may run.
        tick_s: period of the decision and of convergence, seconds.
        heartbeat_s: period of the host heartbeat, seconds.
        host_ttl_s: a host silent this long loses its quota, seconds.
        lease_ttl_s: the leader lease; a dead leader is replaced after this, seconds.
        view_window_s: the sliding window of the wait quantiles the leader reads, seconds.
        arrival_window_s: the span of the arrival-rate estimate, seconds.
        trim_every_s: how often the leader trims acknowledged entries, seconds.
        cleanup_every_s: how often the leader deletes idle consumers, seconds.
        consumer_idle_s: consumers idle this long with nothing pending are deleted.
        dry_run: decide and record, but start and stop no worker and write no plan.
    """

    host_id: str
    capacity: int
    tick_s: float = 1.0
    heartbeat_s: float = 1.0
    host_ttl_s: float = 5.0
    lease_ttl_s: float = 5.0
    view_window_s: float = 5.0
    arrival_window_s: float = 2.0
    trim_every_s: float = 10.0
    cleanup_every_s: float = 60.0
    consumer_idle_s: float = 600.0
    dry_run: bool = False

    @property
    def plan_stale_s(self) -> float:
        """A plan older than this means no leader: hosts hold their size, seconds."""
        return 2 * self.lease_ttl_s + self.tick_s


class Reconciler:
    """Runs one host's controller duties (see the module docstring). One thread."""

    def __init__(
        self,
        *,
        client: Client,
        keys: FleetKeys,
        url: str,
        settings: ControllerSettings,
        supervisor: Supervisor,
        leadership: Leadership,
        policy: VersionedPolicy,
        recorder: Recorder | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.keys = keys
        self.url = url
        self.settings = settings
        self.supervisor = supervisor
        self.leadership = leadership
        self.policy = policy
        self.recorder = recorder or NullRecorder()
        self.monotonic = monotonic
        self.policies = PolicyStore(client, keys, url)
        self.plans = PlanStore(client, keys, url)
        self.hosts = LiveSet(client, url, keys.hosts, keys.host)
        self.workers = Registry(client, keys, url)
        self.clock = RedisTimeEstimate(monotonic)
        self.lease = Lease(False, 0, None)
        self._renewed_at = monotonic()
        self.state = State()
        self.plan: Plan | None = None
        self.quota: int | None = None
        self.stream = JobStream(client, keys, url)
        self._trim = script(client, "trim")
        self._cleanup = script(client, "cleanup")
        self.displaced: MemberTaken | None = None
        self._refused_policy: str | None = None
        self.duties = Duties(
            monotonic(),
            {
                "lead": (settings.tick_s, self.lead),
                "heartbeat": (settings.heartbeat_s, self._keep_host),
                "decide": (settings.tick_s, self.decide),
                "converge": (settings.tick_s, self.converge),
                "promote": (settings.tick_s, self.promote),
                "trim": (settings.trim_every_s, self.trim),
                "cleanup": (settings.cleanup_every_s, self.cleanup),
            },
            log,
            f"controller {settings.host_id}",
        )

    # -- the loop ----------------------------------------------------------------------

    def claim_host(self, wait_s: float, stop: threading.Event | None = None) -> bool:
        """Register this host before the loop starts (workers start only after).

        A controller restarted after a crash finds its predecessor's registration still
        live for up to `host_ttl_s`; it waits up to `wait_s` for it to lapse, unless
        `stop` is set meanwhile. Returns True once registered, False when stopped first
        (nothing registered, nothing to undo).

        Raises:
            MemberTaken: another live controller keeps this host id.
        """
        deadline = self.monotonic() + wait_s
        stop = stop or threading.Event()
        warned = False
        while not stop.is_set():
            try:
                self.heartbeat()
                return True
            except MemberTaken as exc:
                if self.monotonic() >= deadline:
                    raise
                if not warned:
                    log.warning("%s; waiting up to %.0fs for it to lapse", exc, wait_s)
                    warned = True
                stop.wait(self.settings.tick_s)
        return False

    def run(self, stop: threading.Event) -> None:
        """Reconcile until `stop` is set (or another controller takes this host id),
        then shut down cleanly."""
        try:
            while not stop.is_set() and self.displaced is None:
                self.reconcile_once(self.monotonic())
                stop.wait(max(0.0, self.duties.next_deadline() - self.monotonic()))
        finally:
            self.shutdown()

    def reconcile_once(self, now: float) -> None:
        """Run every duty due at monotonic time `now`."""
        self.duties.run_due(now)

    def shutdown(self) -> None:
        """Hand over the lease (at once: the drain may outlast it), stop local workers,
        unregister the host (unless another controller owns the host id now: its
        registration stays)."""
        self.duties.run("resign", self._resign)
        log.info("controller %s stopping: draining its workers (up to %.0fs)",
                 self.settings.host_id, self.supervisor.settings.stop_grace_s)  # fmt: skip
        self.supervisor.stop_all()
        if self.displaced is None:
            self.duties.run("unregister", self._unregister)
        log.info("controller %s stopped", self.settings.host_id)

    def _resign(self) -> None:
        # Exported first: it no longer leads even if the resign cannot reach Redis (the
        # lease then runs out), and its drain may take the whole stop grace.
        self.recorder.leader(False)
        self.recorder.fleet_unknown()
        self.leadership.resign()

    def _unregister(self) -> None:
        self.hosts.remove(self.settings.host_id, owner=self.leadership.candidate)

    # -- duties ------------------------------------------------------------------------

    def _keep_host(self) -> None:
        """The heartbeat duty: stop for good if another controller took this host id."""
        try:
            self.heartbeat()
        except MemberTaken as exc:
            log.error("controller %s stops: %s", self.settings.host_id, exc)
            self.displaced = exc

    def heartbeat(self) -> None:
        """Register this host with its capacity and worker counts."""
        counts = self.supervisor.counts()
        failures = self.supervisor.failures
        info = {
            "host": self.settings.host_id,
            "capacity": self.settings.capacity,
            "running": counts.running,
            "ready": counts.ready,
            "starting": counts.starting,
            "warm": counts.warm,
            "quota": "" if self.quota is None else self.quota,
            "spawn_failures": failures.total,
            "last_error": failures.last_error or "",
            "backoff": int(failures.count > 0),
            "startup_s": "" if (up := self.supervisor.startup_s()) is None else f"{up:.3f}",
            "dry_run": int(self.settings.dry_run),
            "leading": int(self.lease.leading),
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
        }

        def heartbeat_s() -> float:
            owner = self.leadership.candidate
            ms = self.hosts.heartbeat(self.settings.host_id, self.settings.host_ttl_s, info,
                                      owner=owner)  # fmt: skip
            return ms / 1000

        self.recorder.local(counts, self.quota, self.settings.capacity)  # Redis away too
        self.recorder.spawn_failures(self.supervisor.new_spawn_failures())
        self.clock.calibrate(heartbeat_s, refresh=True)

    def lead(self) -> None:
        """Take or keep the leader lease; a new leader resumes the stored plan's state.

        A leader that cannot reach Redis counts itself a follower once its lease has
        expired (a TTL after the last renewal was sent): another controller may lead by
        then, and this one must not go on exporting the fleet's figures as the leader's.
        """
        was_leading = self.lease.leading
        sent_at = self.monotonic()
        try:
            self.lease = self.leadership.attempt()
        except FleetscaleError:
            if was_leading and sent_at - self._renewed_at >= self.leadership.ttl_s:
                self.lease = Lease(False, self.lease.token, None)
                self._stop_leading("its lease expired while Redis was unreachable")
            raise
        self.recorder.leader(self.lease.leading)
        if self.lease.leading:
            self._renewed_at = sent_at
        if self.lease.new_term:
            log.info("controller %s leads fleet %r (token %d)", self.settings.host_id,
                     self.keys.fleet, self.lease.token)  # fmt: skip
            stored = self.plans.read()
            self.state = stored.state if stored else State()
        elif was_leading and not self.lease.leading:
            self._stop_leading(f"it lost the lead to {host_of(self.lease.holder)}")

    def _stop_leading(self, why: str) -> None:
        log.warning("controller %s no longer leads: %s", self.settings.host_id, why)
        self.recorder.leader(False)
        self.recorder.fleet_unknown()

    def decide(self) -> None:
        """Leader only: observe the fleet, decide its size, publish the plan.

        When that fails, the fleet's figures are exported as unknown rather than as
        the last tick's, which would look current.
        """
        try:
            self._decide()
        except FleetscaleError:
            self.recorder.fleet_unknown()
            raise

    def _decide(self) -> None:
        self._reload_policy()
        policy = self.policy.policy
        self.recorder.policy(policy.target_p99_s, policy.min, policy.max)
        if not self.lease.leading:
            return
        view = read_fleet_view(self.client, self.keys, self.url, self.settings.view_window_s,
                               self.settings.arrival_window_s)  # fmt: skip
        dead = DeadLetters(self.client, self.keys, self.url).count()
        self.recorder.fleet(view, dead)
        decision = decide(self._observe(view), self.state, self.policy.policy, view.observed_at_s)
        previous = self.state.desired
        plan = Plan(
            token=self.lease.token,
            leader=self.settings.host_id,
            desired=decision.desired,
            quotas=dict(decision.quotas),
            reason=decision.reason.value,
            decided_at_s=view.observed_at_s,
            policy_version=self.policy.version,
            state=decision.state,
        )
        record = decision_record(decision, leader=self.settings.host_id, at_s=view.observed_at_s,
                                 previous=previous, dry_run=self.settings.dry_run,
                                 policy_version=self.policy.version,
                                 telemetry_age_s=view.telemetry_age_s)  # fmt: skip
        if not self.plans.publish(self.leadership.candidate, self.lease.token,
                                  None if self.settings.dry_run else plan, record):  # fmt: skip
            self.lease = Lease(False, self.lease.token, None)
            return
        self.state = decision.state
        self.recorder.decision(decision.desired, decision.reason.value, previous)
        self.recorder.recommended(decision.desired)
        if previous != decision.desired:
            was = "no plan" if previous is None else previous
            log.info("fleet %r: %s → %d workers (%s)", self.keys.fleet, was, decision.desired,
                     decision.reason.value)  # fmt: skip

    def _observe(self, view: FleetView) -> Observation:
        """The view, the live hosts and, when a host of the last plan has lapsed, the
        workers still taking jobs there (the workers' registrations are read only then:
        two round trips, one command per live worker)."""
        hosts = self.hosts.live()
        lapsed = lapsed_hosts(self.state.quotas, hosts)
        workers = self.workers.live() if lapsed else []
        return observation(view, hosts, unattended_workers(workers, lapsed))

    def _reload_policy(self) -> None:
        """Swap in a new stored policy. One this version cannot read or finds invalid
        is refused (logged once) and the policy in force stays."""
        try:
            stored = self.policies.read()
        except ConfigurationError as exc:
            if str(exc) != self._refused_policy:
                log.error("the stored policy is refused, version %d stays in force: %s",
                          self.policy.version, exc)  # fmt: skip
                self._refused_policy = str(exc)
            return
        self._refused_policy = None
        if stored is not None and stored.version != self.policy.version:
            log.info("policy version %d loaded", stored.version)
            if stored.unknown:
                log.warning("%s", stored.unknown_note())
            self.policy = stored  # one assignment: the swap is atomic

    def converge(self) -> None:
        """Move this host's workers toward its quota; hold without a fresh plan. Start
        nothing once another controller has taken this host id.

        When the plan cannot be read (Redis away) the host holds its size, and the
        supervisor still replaces exits and kills workers that outlast their stop grace.
        """
        if self.displaced is not None:
            return
        try:
            self.plan = self.plans.read()
        except FleetscaleError:
            self.plan = None
            self._ensure_quota()
            raise
        self._ensure_quota()

    def _ensure_quota(self) -> None:
        counts = self.supervisor.counts()
        target = self._target(counts.running)
        busy = self._busy_pids() if target < counts.running else set()
        self.supervisor.ensure(target, busy, capacity=self.settings.capacity)

    def _target(self, running: int) -> int:
        """This host's quota in a fresh plan, else `running` (hold the size)."""
        plan = self._fresh_plan()
        self.recorder.desired(None if plan is None else plan.desired)
        if plan is None:
            self.quota = None
            return running
        self.quota = min(plan.quotas.get(self.settings.host_id, 0), self.settings.capacity)
        return self.quota

    def _fresh_plan(self) -> Plan | None:
        """The plan to follow: None without one, in a dry run, before the Redis clock is
        calibrated, or once it is older than `plan_stale_s`."""
        plan = self.plan
        if plan is None or self.settings.dry_run or self.clock.offset_s is None:
            return None
        fresh = self.clock.now_s() - plan.decided_at_s <= self.settings.plan_stale_s
        return plan if fresh else None

    def _busy_pids(self) -> set[int]:
        """Pids of this host's workers that hold entries (stopped last)."""
        with redis_errors(self.url):
            if not self.client.exists(self.keys.jobs):
                return set()
            consumers = self.client.xinfo_consumers(self.keys.jobs, GROUP)
        busy = set()
        for consumer in consumers:
            host, _, rest = consumer["name"].decode().partition(":")
            pid = rest.split(":", 1)[0]
            if host == self.settings.host_id and int(consumer["pending"]) > 0 and pid.isdigit():
                busy.add(int(pid))
        return busy

    def promote(self) -> None:
        """Leader only: move due delayed jobs (`delay_s`, retries) into the stream, as
        workers do, so they also run — from zero — in a fleet that has no worker."""
        if self.lease.leading:
            self.stream.promote_due()

    def trim(self) -> None:
        """Leader only: drop stream entries no group needs any more."""
        if self.lease.leading:
            with redis_errors(self.url):
                self._trim(keys=[self.keys.jobs])

    def cleanup(self) -> None:
        """Leader only: delete consumers idle with nothing pending."""
        if self.lease.leading:
            with redis_errors(self.url):
                self._cleanup(
                    keys=[self.keys.jobs], args=[GROUP, int(self.settings.consumer_idle_s * 1000)]
                )


def seed_policy(store: PolicyStore, flags: Policy) -> tuple[VersionedPolicy, bool]:
    """Store `flags` as the fleet's policy if it has none; return the policy in force
    and whether it differs from the flags (the caller says so at start)."""
    stored = store.seed(flags)
    return stored, stored.policy != flags
