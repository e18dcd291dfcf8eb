"""The first steps of `decide`: what the fleet needs, and the raw recommendation.

The capacity model (`fleetscale.controller.capacity`) sizes the fleet for the smoothed
arrival rate: at least the Erlang-C workers that keep p99 wait within the target, and at
least rate × service time ÷ target utilisation, times a learned correction. Growth beyond
it is urgent when the waits say so (p99 or head-of-line age over the target), or when a
backlog builds (head-of-line age over half the target): then the fleet is sized on the
higher of the raw and smoothed rate, plus the workers that drain the queued jobs within
the target. Shrinkage is sized by the capacity model alone, and only when the waits are
known and quiet: never from an empty queue or a low p99 by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetscale.controller.capacity import workers_for_wait
from fleetscale.controller.policytypes import Observation, Policy, Reason, State

QUIET_FRACTION = 0.5
"""Scale-down needs p99 wait and head-of-line age at or under this share of the target."""

WAIT_HEADROOM = 0.8
"""The capacity model sizes Erlang C for p99 at this share of the target: the rate and
run time it is fed are estimates, and a 10 s window's p99 scatters around the
steady-state value, so sizing exactly at the target would miss it about half the time."""

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Needs:
    """What the model and the waits say the fleet needs this tick.

    Attributes:
        steady: capacity-model workers at the smoothed rate (None = unknown).
        floor: Erlang-C workers at the smoothed rate, without utilisation headroom:
            below it the model expects the p99 target to be missed.
        surge: capacity-model workers at the higher of raw and smoothed rate.
        drain: extra workers to drain queued jobs within the target (0 when the head of
            the line is younger than half the target; None = unknown).
        wait_ratio: the worse of p99 wait and head-of-line age over the target.
        learn_ratio: p99 over target when the fleet is at least model-sized, out of
            start-up grace, and still breaching: evidence that the model under-sizes.
    """

    steady: int | None
    floor: int | None
    surge: int | None
    drain: int | None
    wait_ratio: float | None
    learn_ratio: float | None


@dataclass(frozen=True, slots=True)
class Tick:
    """The fixed context of one `decide` call, handed to each step.

    Attributes:
        signals: the observation after staleness was applied.
        state: the previous state.
        policy: the policy in force.
        now_s: the caller's clock, seconds.
        current: the fleet size the decision starts from, workers.
    """

    signals: Observation
    state: State
    policy: Policy
    now_s: float
    current: int


@dataclass(frozen=True, slots=True)
class Step:
    """A value on its way through the decision chain.

    Attributes:
        value: the fleet size so far, workers.
        reason: the step that shaped it.
        urgent: an SLO-driven scale-up (bypasses tolerance, stabilisation and budget).
        record: the sizing recommendation to remember for stabilisation (None: none).
    """

    value: int
    reason: Reason
    urgent: bool = False
    record: int | None = None


def capacity_workers(
    rate_per_s: float | None,
    service_s: float | None,
    policy: Policy,
    correction: float = 1.0,
    *,
    headroom: bool = True,
) -> int | None:
    """Return the capacity model's fleet size, or None when it cannot be computed.

    The size is the Erlang-C workers for p99 within `WAIT_HEADROOM` × the target and,
    with `headroom`, at least
    load ÷ target utilisation; times the learned correction. A known zero rate needs
    zero workers whatever the service time.
    """
    if rate_per_s is None:
        return None
    if rate_per_s <= 0.0:
        return 0
    if service_s is None or service_s <= 0.0:
        return None
    needed = workers_for_wait(
        rate_per_s, service_s, policy.target_p99_s * WAIT_HEADROOM, limit=max(policy.max, 1) + 1
    )
    if headroom:
        load = rate_per_s * service_s
        needed = max(needed, math.ceil(load / policy.target_utilisation - _EPSILON))
    return math.ceil(needed * correction - _EPSILON)


def _wait_ratio(signals: Observation, policy: Policy) -> float | None:
    known = [s for s in (signals.wait_p99_s, signals.head_of_line_age_s) if s is not None]
    return max(known) / policy.target_p99_s if known else None


def _drain_workers(signals: Observation, service_s: float | None, policy: Policy) -> int | None:
    age_s, backlog = signals.head_of_line_age_s, signals.backlog
    if age_s is None or backlog is None:
        return None
    if not _slow(age_s, policy):
        return 0
    if service_s is None:
        return None
    queued = max(0, backlog - sum(host.ready for host in signals.hosts))
    return math.ceil(queued * service_s / policy.target_p99_s - _EPSILON)


def model_needs(tick: Tick, rate_per_s: float | None, service_s: float | None) -> Needs:
    """Evaluate the capacity model (on the smoothed rate and service time) and the waits."""
    signals, state, policy = tick.signals, tick.state, tick.policy
    raw = signals.arrival_rate_per_s
    surge_rate = max(raw, rate_per_s) if raw is not None and rate_per_s is not None else raw
    steady = capacity_workers(rate_per_s, service_s, policy, state.correction)
    surge = (
        steady
        if surge_rate == rate_per_s
        else capacity_workers(surge_rate, service_s, policy, state.correction)
    )
    learn_ratio = None
    p99, age_s = signals.wait_p99_s, signals.head_of_line_age_s
    breach = p99 is not None and p99 > policy.target_p99_s * (1 + policy.tolerance)
    # The windowed p99 still holds old waits after a burst was absorbed: learn only
    # while the queue is slow now too, at model size, outside the start-up grace.
    slow_now = age_s is not None and _slow(age_s, policy)
    if breach and slow_now and p99 is not None:
        model_sized = surge is not None and tick.current >= surge
        if model_sized and not in_grace(state, policy, tick.now_s):
            learn_ratio = p99 / policy.target_p99_s
    floor = capacity_workers(rate_per_s, service_s, policy, state.correction, headroom=False)
    return Needs(
        steady=steady,
        floor=floor,
        surge=surge,
        drain=_drain_workers(signals, service_s, policy),
        wait_ratio=_wait_ratio(signals, policy),
        learn_ratio=learn_ratio,
    )


def in_grace(state: State, policy: Policy, now_s: float) -> bool:
    """Whether the fleet grew less than `startup_grace_s` ago."""
    last_s = state.last_scale_up_s
    return last_s is not None and now_s - last_s < policy.startup_grace_s


def _has_work(signals: Observation) -> bool:
    return any(
        value is not None and value > 0
        for value in (signals.backlog, signals.head_of_line_age_s, signals.arrival_rate_per_s)
    )


def _quiet(signals: Observation, policy: Policy) -> Reason | None:
    """Return None when the waits allow a scale-down, else the reason to hold."""
    if signals.telemetry_age_s is None or signals.telemetry_age_s > policy.max_signal_age_s:
        return Reason.HOLD_UNKNOWN
    if signals.head_of_line_age_s is None or signals.backlog is None:
        return Reason.HOLD_UNKNOWN
    limit_s = policy.target_p99_s * QUIET_FRACTION
    p99 = signals.wait_p99_s
    if signals.head_of_line_age_s > limit_s or (p99 is not None and p99 > limit_s):
        return Reason.WAIT_GUARD
    return None


def _breach(tick: Tick, needs: Needs) -> Step | None:
    """Grow when the waits breach the target now; None when they do not.

    A breach is a head-of-line age over the target (reason BACKLOG), or a p99 wait over
    it while the head of the line is at least half the target old (reason SLO_BREACH):
    the windowed p99 lags, so a high p99 with a young head of line is an old breach
    already absorbed. The fleet grows to the model at the surge rate plus the workers
    that drain the queue within the target, or by the wait ratio (at most ×2), whichever
    is more. Within the start-up grace the ratio does not compound: the workers added
    last time are still starting and the windowed p99 still holds the old waits.
    """
    policy, signals, current = tick.policy, tick.signals, tick.current
    limit_s = policy.target_p99_s * (1 + policy.tolerance)
    age_s, p99 = signals.head_of_line_age_s, signals.wait_p99_s
    if age_s is not None and age_s > limit_s:
        reason = Reason.BACKLOG
    elif p99 is not None and p99 > limit_s and age_s is not None and _slow(age_s, policy):
        reason = Reason.SLO_BREACH
    else:
        return None
    ratio = needs.wait_ratio or 1.0
    grace = in_grace(tick.state, policy, tick.now_s)
    proportional = current if grace else math.ceil(current * min(ratio, 2))
    model = (needs.surge or 0) + (needs.drain or 0)
    return Step(max(current, proportional, model), reason, True, needs.surge)


def _slow(age_s: float, policy: Policy) -> bool:
    """Whether the head of the line is at least `QUIET_FRACTION` of the target old."""
    return age_s >= policy.target_p99_s * QUIET_FRACTION


def recommend(tick: Tick, needs: Needs) -> Step:
    """Return the raw recommendation before stabilisation, limits and clamps."""
    signals, policy, current = tick.signals, tick.policy, tick.current
    if current == 0 and _has_work(signals):
        start = max(1, (needs.surge or 0) + (needs.drain or 0))
        return Step(start, Reason.SCALE_FROM_ZERO, True, needs.surge)
    breach = _breach(tick, needs)
    if breach is not None:
        return breach
    steady = needs.steady
    if steady is None:
        return Step(current, Reason.HOLD_UNKNOWN)
    if steady > current:
        below_floor = needs.floor is not None and needs.floor > current
        if below_floor or steady > current * (1 + policy.tolerance):
            return Step(steady, Reason.CAPACITY_UP, record=steady)
        return Step(current, Reason.WITHIN_TOLERANCE, record=steady)
    if steady == current:
        return Step(current, Reason.AT_TARGET, record=steady)
    hold = _quiet(signals, policy)
    if hold is not None:
        return Step(current, hold, record=steady)
    return Step(steady, Reason.CAPACITY_DOWN, record=steady)
