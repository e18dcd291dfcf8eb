"""The scalers the simulator compares: fleetscale's policy and the baselines to beat.

- `default`: `fleetscale.controller.policy.decide` with a `Policy`, state carried over.
- `hpa`: Kubernetes HPA on the p99 wait as an object metric: desired = ⌈current × p99 ÷
  target⌉, skipped within 10 % tolerance, every 15 s, scale-down to the highest
  recommendation of the last 300 s, scale-up at most max(4 pods, 100 %) per 15 s,
  never below 1 replica (HPA cannot scale to zero). A missing metric holds.
- `keda`: KEDA's redis-streams scaler (`lagCount` = 5 jobs per worker) feeding the same
  HPA: desired = ⌈backlog ÷ 5⌉ (an AverageValue target, 10 % tolerance); KEDA itself
  activates 0 → 1 on any backlog at its 30 s polling interval and returns to zero after
  the 300 s cooldown without backlog.
- `celery`: Celery's worker autoscaler (`--autoscale=max,min`, 1 s loop, 30 s keepalive):
  grow at once to min(backlog, max); shrink to max(backlog, min) only when 30 s have
  passed since the last growth.
- `static`: a fixed fleet, by default the fewest workers that meet the target at the
  trace's peak rate (provisioning for the peak).
- `oracle`: knows the trace: at each instant the Erlang-C fewest workers for the rate,
  started one start-up ahead. Its cost is the offline lower bound `oracle_worker_seconds`.

Every scaler `make_scaler` builds keeps within the policy's `min` and `max` (KEDA and
Celery start at `min`; the HPA, as in Kubernetes, never goes below 1).
"""

from __future__ import annotations

import bisect
import math
import sys
from dataclasses import dataclass, field

from fleetscale.controller.capacity import workers_for_wait
from fleetscale.controller.policy import Observation, Policy, State, decide
from fleetscale.errors import ConfigurationError
from fleetscale.sim.service import ServiceTime
from fleetscale.sim.trace import Trace

POLICIES = ("default", "hpa", "keda", "celery", "static", "oracle")
"""Names `fleetscale simulate --policy` accepts."""


@dataclass(slots=True)
class DefaultScaler:
    """fleetscale's policy, deciding every `period_s`."""

    policy: Policy
    period_s: float = 1.0
    name: str = "default"
    state: State = field(default_factory=State)
    reasons: dict[str, int] = field(default_factory=dict)

    def desired(self, observation: Observation, now_s: float) -> int:
        """Run `decide` and keep its state; count reason codes for the report."""
        decision = decide(observation, self.state, self.policy, now_s)
        self.state = decision.state
        key = decision.reason.value
        self.reasons[key] = self.reasons.get(key, 0) + 1
        return decision.desired


@dataclass(slots=True)
class _HpaBehaviour:
    """The HPA's defaults around any metric: tolerance, stabilisation, scale-up limit."""

    minimum: int
    maximum: int
    current: int = 0
    history: list[tuple[float, int]] = field(default_factory=list)
    tolerance: float = 0.1
    stabilisation_s: float = 300.0

    def apply(self, ratio: float | None, proposal: int, now_s: float) -> int:
        if ratio is None or abs(ratio - 1.0) <= self.tolerance:
            proposal = self.current
        self.history = [(t, r) for t, r in self.history if t > now_s - self.stabilisation_s]
        self.history.append((now_s, proposal))
        if proposal < self.current:
            proposal = min(self.current, max(r for _, r in self.history))
        limit = max(self.current + 4, 2 * self.current)
        self.current = min(max(min(proposal, limit), self.minimum), self.maximum)
        return self.current


@dataclass(slots=True)
class HpaScaler:
    """Kubernetes HPA, proportional on p99 wait (see the module docstring)."""

    target_p99_s: float
    minimum: int
    maximum: int
    period_s: float = 15.0
    name: str = "hpa"
    hpa: _HpaBehaviour = field(init=False)

    def __post_init__(self) -> None:
        self.hpa = _HpaBehaviour(max(1, self.minimum), self.maximum)

    def desired(self, observation: Observation, now_s: float) -> int:
        """Scale the current size by p99 ÷ target."""
        p99 = observation.wait_p99_s
        current = max(self.hpa.current, 1)
        if p99 is None:
            return self.hpa.apply(None, current, now_s)
        ratio = p99 / self.target_p99_s
        return self.hpa.apply(ratio, math.ceil(current * ratio), now_s)


@dataclass(slots=True)
class KedaScaler:
    """KEDA redis-streams lag scaler on the HPA (see the module docstring)."""

    minimum: int
    maximum: int
    lag_per_worker: int = 5
    period_s: float = 15.0
    name: str = "keda"
    polling_s: float = 30.0
    cooldown_s: float = 300.0
    hpa: _HpaBehaviour = field(init=False)
    last_active_s: float = -math.inf

    def __post_init__(self) -> None:
        self.hpa = _HpaBehaviour(max(1, self.minimum), self.maximum, current=self.minimum)

    def desired(self, observation: Observation, now_s: float) -> int:
        """Backlog per worker, with KEDA's activation and cooldown around it."""
        backlog = observation.backlog or 0
        if backlog > 0:
            self.last_active_s = now_s
        if self.hpa.current == 0:
            polled = now_s % self.polling_s < self.period_s
            if backlog > 0 and polled:
                self.hpa.current = min(1, self.maximum)
            return self.hpa.current
        if self.minimum == 0 and now_s - self.last_active_s >= self.cooldown_s:
            self.hpa.current = 0
            self.hpa.history.clear()
            return 0
        proposal = math.ceil(backlog / self.lag_per_worker)
        ratio = backlog / (self.lag_per_worker * self.hpa.current)
        return self.hpa.apply(ratio, proposal, now_s)


@dataclass(slots=True)
class CeleryScaler:
    """Celery's worker autoscaler (see the module docstring)."""

    minimum: int
    maximum: int
    keepalive_s: float = 30.0
    period_s: float = 1.0
    name: str = "celery"
    current: int = 0
    last_grow_s: float = -math.inf

    def __post_init__(self) -> None:
        self.current = max(self.current, self.minimum)

    def desired(self, observation: Observation, now_s: float) -> int:
        """Grow toward the backlog at once; shrink after the keepalive."""
        backlog = observation.backlog or 0
        grow_to = min(backlog, self.maximum)
        if grow_to > self.current:
            self.current, self.last_grow_s = grow_to, now_s
            return self.current
        shrink_to = max(backlog, self.minimum)
        if shrink_to < self.current and now_s - self.last_grow_s > self.keepalive_s:
            self.current = shrink_to
        return self.current


@dataclass(slots=True)
class StaticScaler:
    """A fixed fleet of `workers`."""

    workers: int
    period_s: float = 1.0
    name: str = "static"

    def desired(self, observation: Observation, now_s: float) -> int:
        """Always `workers`."""
        return self.workers


def oracle_workers(rate_per_s: float, service: ServiceTime, target_p99_s: float) -> int:
    """The fewest workers whose p99 wait meets the target at a steady `rate_per_s`."""
    return workers_for_wait(rate_per_s, service.mean_s, target_p99_s, cv=service.cv)


@dataclass(slots=True)
class OracleScaler:
    """The clairvoyant schedule: Erlang-C workers for the rate one start-up ahead."""

    trace: Trace
    service: ServiceTime
    target_p99_s: float
    lead_s: float
    minimum: int = 0
    maximum: int = sys.maxsize
    period_s: float = 1.0
    name: str = "oracle"
    _segments: list[tuple[float, float, float]] = field(default_factory=list)
    _sizes: dict[float, int] = field(default_factory=dict)

    def desired(self, observation: Observation, now_s: float) -> int:
        """The most workers any rate in [now, now + lead + period] needs, within bounds."""
        if not self._segments:
            self._segments = self.trace.segments()
        horizon_s = now_s + self.lead_s + self.period_s
        first = bisect.bisect_right(self._segments, (now_s, math.inf, math.inf)) - 1
        needed = 0
        for start, end, rate in self._segments[max(first, 0) :]:
            if start >= horizon_s:
                break
            if end > now_s:
                needed = max(needed, self._size(rate))
        return min(max(needed, self.minimum), self.maximum)

    def _size(self, rate_per_s: float) -> int:
        if rate_per_s not in self._sizes:
            self._sizes[rate_per_s] = oracle_workers(rate_per_s, self.service, self.target_p99_s)
        return self._sizes[rate_per_s]


@dataclass(slots=True)
class ReactiveBound:
    """A bound on reactive policies, not a policy: what the best one could do.

    It is told the trace's exact rate `delay_s` after each change (no estimation error,
    no false alarm), keeps at least `floor` workers, and otherwise runs the oracle's
    M/G/c size for that rate, plus enough workers to serve the queued backlog within
    the target. It decides every `delay_s`. `bench/policy.py` sweeps `floor` and
    `delay_s` on the bursty trace to show what a 1 s cold start allows.
    """

    trace: Trace
    service: ServiceTime
    target_p99_s: float
    floor: int
    delay_s: float
    name: str = "reactive"
    period_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.period_s = self.delay_s

    def desired(self, observation: Observation, now_s: float) -> int:
        """The floor, the oracle's size for the rate `delay_s` ago, or the drain size."""
        rate = self.trace.rate_at(now_s - self.delay_s)
        size = oracle_workers(rate, self.service, self.target_p99_s)
        backlog = observation.backlog or 0
        drain = math.ceil(backlog * self.service.mean_s / self.target_p99_s)
        return max(self.floor, size, drain)


def make_scaler(
    name: str,
    trace: Trace,
    service: ServiceTime,
    policy: Policy,
    *,
    period_s: float,
    lead_s: float,
) -> DefaultScaler | HpaScaler | KedaScaler | CeleryScaler | StaticScaler | OracleScaler:
    """Build the scaler `name` (one of `POLICIES`) for a trace.

    Raises:
        ConfigurationError: for an unknown name.
    """
    target = policy.target_p99_s
    if name == "default":
        return DefaultScaler(policy, period_s)
    if name == "hpa":
        return HpaScaler(target, policy.min, policy.max)
    if name == "keda":
        return KedaScaler(policy.min, policy.max)
    if name == "celery":
        return CeleryScaler(policy.min, policy.max)
    if name == "static":
        peak = max((rate for _, rate in trace.steps), default=0.0)
        workers = max(1, policy.min, oracle_workers(peak, service, target))
        return StaticScaler(min(policy.max, workers))
    if name == "oracle":
        return OracleScaler(trace, service, target, lead_s, policy.min, policy.max)
    raise ConfigurationError(f"unknown policy {name!r}: use one of {', '.join(POLICIES)}")
