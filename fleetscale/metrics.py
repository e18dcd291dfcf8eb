"""Prometheus metrics, behind a narrow `Recorder` protocol.

The controller is the exporter (`--metrics-port`). Metrics live in a registry of their
own, created when a `PrometheusRecorder` is built — never at import. Label values are
bounded: reasons and directions are enums, outcomes a fixed set, hosts the fleet's.
Names follow `fleetscale_<subsystem>_<name>_<unit>`; every one is listed in `METRICS`.
`fleetscale_recommended_workers` keeps the name Kubernetes users are told to scale on
(issue 6), rather than the pattern's `fleetscale_workers_recommended`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from fleetscale.fleetview import FleetView

METRICS: dict[str, str] = {
    "fleetscale_workers_desired": "Fleet size the leader decided, workers.",
    "fleetscale_recommended_workers": "Fleet size the policy recommends (also when dry-run).",
    "fleetscale_workers_running": "Worker processes on this host that are not stopping.",
    "fleetscale_workers_ready": "Workers on this host taking jobs.",
    "fleetscale_workers_starting": "Workers on this host started but not yet taking jobs.",
    "fleetscale_workers_warm": "Warm spare workers on this host (ready, not consuming).",
    "fleetscale_host_quota_workers": "This host's share of the fleet, workers.",
    "fleetscale_host_capacity_workers": "The most workers this host may run.",
    "fleetscale_queue_backlog_jobs": "Jobs queued or running (group lag + pending).",
    "fleetscale_queue_head_of_line_age_seconds": "Age of the oldest job not yet delivered.",
    "fleetscale_queue_arrival_rate_jobs_per_second": "Jobs added per second.",
    "fleetscale_queue_wait_seconds": "Queue-wait quantiles over the controller's window.",
    "fleetscale_controller_decisions_total": "Decisions taken by the leader, by reason.",
    "fleetscale_controller_scale_events_total": "Changes of the desired size, by direction.",
    "fleetscale_controller_leader": "1 while this controller leads the fleet.",
    "fleetscale_supervisor_spawn_failures_total": "Workers that failed to start.",
    "fleetscale_queue_jobs_per_second": "Jobs finished per second fleet-wide, by outcome.",
    "fleetscale_dead_letters_jobs": "Jobs in the dead-letter stream.",
    "fleetscale_policy_target_p99_seconds": "The policy's queue-wait target (p99).",
    "fleetscale_policy_min_workers": "The policy's fewest workers.",
    "fleetscale_policy_max_workers": "The policy's most workers.",
}
WAIT_QUANTILES = ("0.5", "0.99")
OUTCOMES = ("done", "failed")
DIRECTIONS = ("up", "down")


@dataclass(frozen=True, slots=True)
class LocalWorkers:
    """This host's worker processes, as its supervisor counts them."""

    running: int
    ready: int
    starting: int
    warm: int


class Recorder(Protocol):
    """What the controller reports; a Prometheus and a null implementation exist."""

    def fleet(self, view: FleetView, dead_letters: int) -> None:
        """The fleet's signals this tick."""

    def fleet_unknown(self) -> None:
        """The fleet's signals and recommendation are not known here (any more)."""

    def decision(self, desired: int, reason: str, previous: int | None) -> None:
        """A decision of the leader (or of a dry-run controller)."""

    def desired(self, workers: int | None) -> None:
        """The fleet size of the plan this host follows (None: no fresh plan)."""

    def recommended(self, workers: int) -> None:
        """The size the policy recommends."""

    def local(self, workers: LocalWorkers, quota: int | None, capacity: int) -> None:
        """This host's workers, quota and capacity."""

    def leader(self, leading: bool) -> None:
        """Whether this controller leads (a follower's fleet-wide figures are unknown)."""

    def spawn_failures(self, count: int) -> None:
        """Workers that failed to start since the last call."""

    def policy(self, target_p99_s: float, min_workers: int, max_workers: int) -> None:
        """The scaling policy in force."""


class NullRecorder:
    """Records nothing (no `--metrics-port`)."""

    def fleet(self, view: FleetView, dead_letters: int) -> None:
        """Nothing."""

    def fleet_unknown(self) -> None:
        """Nothing."""

    def decision(self, desired: int, reason: str, previous: int | None) -> None:
        """Nothing."""

    def desired(self, workers: int | None) -> None:
        """Nothing."""

    def recommended(self, workers: int) -> None:
        """Nothing."""

    def local(self, workers: LocalWorkers, quota: int | None, capacity: int) -> None:
        """Nothing."""

    def leader(self, leading: bool) -> None:
        """Nothing."""

    def spawn_failures(self, count: int) -> None:
        """Nothing."""

    def policy(self, target_p99_s: float, min_workers: int, max_workers: int) -> None:
        """Nothing."""


class PrometheusRecorder:
    """Prometheus metrics in a registry of their own.

    Args:
        host: this controller's host id (the value of the `host` label).
    """

    def __init__(self, host: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.host = host
        r = self.registry
        gauge = {n: Gauge(n, METRICS[n], registry=r) for n in _PLAIN_GAUGES}
        self._gauges = gauge
        self._host_gauges = {n: Gauge(n, METRICS[n], ["host"], registry=r) for n in _HOST_GAUGES}
        self._wait = Gauge(
            "fleetscale_queue_wait_seconds",
            METRICS["fleetscale_queue_wait_seconds"],
            ["quantile"],
            registry=r,
        )
        self._decisions = Counter(
            "fleetscale_controller_decisions",
            METRICS["fleetscale_controller_decisions_total"],
            ["reason"],
            registry=r,
        )
        self._scales = Counter(
            "fleetscale_controller_scale_events",
            METRICS["fleetscale_controller_scale_events_total"],
            ["direction"],
            registry=r,
        )
        self._spawn_failures = Counter(
            "fleetscale_supervisor_spawn_failures",
            METRICS["fleetscale_supervisor_spawn_failures_total"],
            ["host"],
            registry=r,
        )
        self._jobs = Gauge(
            "fleetscale_queue_jobs_per_second",
            METRICS["fleetscale_queue_jobs_per_second"],
            ["outcome"],
            registry=r,
        )
        # Every series exists from the start (NaN until known; a follower is not the
        # leader), so dashboards and alerts see the metric before its first value, and
        # never a 0 that nobody measured (a recommendation of 0 workers would let an
        # HPA or KEDA scale the fleet to zero).
        for name in _PLAIN_GAUGES:
            gauge[name].set(math.nan)
        gauge["fleetscale_controller_leader"].set(0)
        for name in _HOST_GAUGES:
            self._host_gauges[name].labels(host).set(math.nan)
        for direction in DIRECTIONS:
            self._scales.labels(direction)
        self.fleet_unknown()
        self._spawn_failures.labels(host)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve `/metrics` on `port` from a daemon thread."""
        start_http_server(port, addr=addr, registry=self.registry)

    def fleet(self, view: FleetView, dead_letters: int) -> None:
        """The fleet's signals this tick; unknown ones are exported as NaN."""
        g = self._gauges
        g["fleetscale_queue_backlog_jobs"].set(_known(view.backlog))
        g["fleetscale_queue_head_of_line_age_seconds"].set(view.head_of_line_age_s)
        g["fleetscale_queue_arrival_rate_jobs_per_second"].set(_known(view.arrival_rate_per_s))
        for quantile, value in zip(WAIT_QUANTILES, (view.wait_p50_s, view.wait_p99_s), strict=True):
            self._wait.labels(quantile).set(_known(value))
        g["fleetscale_dead_letters_jobs"].set(dead_letters)
        rates = zip(OUTCOMES, (view.completed_per_s, view.failed_per_s), strict=True)
        for outcome, rate in rates:
            self._jobs.labels(outcome).set(_known(rate))

    def fleet_unknown(self) -> None:
        """Export the fleet's signals and the recommendation as NaN (no value)."""
        for name in _FLEET_GAUGES:
            self._gauges[name].set(math.nan)
        for quantile in WAIT_QUANTILES:
            self._wait.labels(quantile).set(math.nan)
        for outcome in OUTCOMES:
            self._jobs.labels(outcome).set(math.nan)

    def decision(self, desired: int, reason: str, previous: int | None) -> None:
        """A decision: its reason, and a scale event if the size changed."""
        self._decisions.labels(reason).inc()
        if previous is not None and desired != previous:
            self._scales.labels("up" if desired > previous else "down").inc()

    def desired(self, workers: int | None) -> None:
        """The fleet size of the plan this host follows (None: no fresh plan)."""
        self._gauges["fleetscale_workers_desired"].set(_known(workers))

    def recommended(self, workers: int) -> None:
        """The size the policy recommends."""
        self._gauges["fleetscale_recommended_workers"].set(workers)

    def local(self, workers: LocalWorkers, quota: int | None, capacity: int) -> None:
        """This host's workers, quota and capacity."""
        h = self._host_gauges
        h["fleetscale_workers_running"].labels(self.host).set(workers.running)
        h["fleetscale_workers_ready"].labels(self.host).set(workers.ready)
        h["fleetscale_workers_starting"].labels(self.host).set(workers.starting)
        h["fleetscale_workers_warm"].labels(self.host).set(workers.warm)
        h["fleetscale_host_capacity_workers"].labels(self.host).set(capacity)
        h["fleetscale_host_quota_workers"].labels(self.host).set(_known(quota))

    def leader(self, leading: bool) -> None:
        """1 while this controller leads. A follower exports no fleet-wide figures:
        they are the leader's, and a controller that lost the lead (say, its plan was
        refused for a stale fencing token) would otherwise go on exporting its last."""
        self._gauges["fleetscale_controller_leader"].set(int(leading))
        if not leading:
            self.fleet_unknown()

    def spawn_failures(self, count: int) -> None:
        """Workers that failed to start since the last call."""
        if count:
            self._spawn_failures.labels(self.host).inc(count)

    def policy(self, target_p99_s: float, min_workers: int, max_workers: int) -> None:
        """The scaling policy in force (what the dashboard draws the waits against)."""
        g = self._gauges
        g["fleetscale_policy_target_p99_seconds"].set(target_p99_s)
        g["fleetscale_policy_min_workers"].set(min_workers)
        g["fleetscale_policy_max_workers"].set(max_workers)


def _known(value: float | None) -> float:
    """The value, or NaN (Prometheus's "no value") when unknown."""
    return math.nan if value is None else value


_PLAIN_GAUGES = (
    "fleetscale_workers_desired",
    "fleetscale_recommended_workers",
    "fleetscale_queue_backlog_jobs",
    "fleetscale_queue_head_of_line_age_seconds",
    "fleetscale_queue_arrival_rate_jobs_per_second",
    "fleetscale_controller_leader",
    "fleetscale_dead_letters_jobs",
    "fleetscale_policy_target_p99_seconds",
    "fleetscale_policy_min_workers",
    "fleetscale_policy_max_workers",
)
_FLEET_GAUGES = (
    "fleetscale_recommended_workers",
    "fleetscale_queue_backlog_jobs",
    "fleetscale_queue_head_of_line_age_seconds",
    "fleetscale_queue_arrival_rate_jobs_per_second",
    "fleetscale_dead_letters_jobs",
)
"""The leader's view of the fleet: unknown on a follower or after a failed read."""
_HOST_GAUGES = (
    "fleetscale_workers_running",
    "fleetscale_workers_ready",
    "fleetscale_workers_starting",
    "fleetscale_workers_warm",
    "fleetscale_host_quota_workers",
    "fleetscale_host_capacity_workers",
)
