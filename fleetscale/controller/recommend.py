"""The first steps of `decide`: what the fleet needs, and the raw recommendation.

The capacity model sizes the fleet for a rate: at least the M/G/c workers (Erlang C with
the Allen–Cunneen correction for the measured run-time cv) that keep p99 wait within
`WAIT_HEADROOM` × the target, and at least rate × run time ÷ target utilisation.

The rate it covers is the slow rate estimate plus `SPREAD_Z` times the rate's spread
(`fleetscale.controller.estimate`): Poisson-like load is covered at its mean, traffic
that moves by the second with the headroom its movement takes. Around that rate lies a
noise band of `BAND_Z` standard errors of the load estimate, and the fleet moves only
when the band's far end says so (hysteresis, so a stationary load does not flap):

- up, to the model's size, when even the band's low end needs more workers;
- down, to the band's high end, when that end (widened by `SPREAD_Z` spreads) needs
  fewer, the waits are quiet, and stabilisation agrees (see `policy`).

Growth beyond the model is urgent when the waits say so (`fleetscale.controller.breach`).
Shrinkage is never sized from an empty queue or a low p99 by itself; a fleet idle (no
arrivals, nothing waiting, no worker busy) for `scale_to_zero_after_s` needs none.
"""

from __future__ import annotations

import math

from fleetscale.controller.breach import (
    QUIET_FRACTION,
    drain_workers,
    grow_on_breach,
    in_grace,
    wait_ratio,
)
from fleetscale.controller.capacity import workers_for_wait
from fleetscale.controller.estimate import Estimates
from fleetscale.controller.policytypes import Observation, Policy, Reason
from fleetscale.controller.step import Needs, Step, Tick

__all__ = ["Needs", "Step", "Tick", "capacity_workers", "model_needs", "recommend"]

WAIT_HEADROOM = 0.8
"""The capacity model sizes Erlang C for p99 at this share of the target: a 10 s
window's p99 scatters around the steady-state value, so sizing exactly at the target
would miss it in many windows."""

BAND_Z = 2.0
"""Standard errors of the load estimate the capacity model's change must exceed before
it moves the fleet."""

SPREAD_Z = 1.5
"""The fleet covers the slow rate plus this many spreads of the rate; a scale-down also
waits until the band's high end, widened by as many spreads, needs fewer workers."""

_EPSILON = 1e-9


def capacity_workers(
    rate_per_s: float | None,
    service_s: float | None,
    policy: Policy,
    correction: float = 1.0,
    *,
    headroom: bool = True,
    cv: float | None = None,
) -> int | None:
    """Return the capacity model's fleet size, or None when it cannot be computed.

    The size is the M/G/c workers (Erlang C with the Allen–Cunneen correction for run
    times of coefficient of variation `cv`, 1 when unknown) for p99 within
    `WAIT_HEADROOM` × the target at the rate × the learned correction and, with
    `headroom`, at least load ÷ target utilisation. A known zero rate needs zero
    workers whatever the service time.
    """
    if rate_per_s is None:
        return None
    if rate_per_s <= 0.0:
        return 0
    if service_s is None or service_s <= 0.0:
        return None
    needed = workers_for_wait(
        rate_per_s * correction,
        service_s,
        policy.target_p99_s * WAIT_HEADROOM,
        cv=1.0 if cv is None else cv,
        limit=max(policy.max, 1) + 1,
    )
    if headroom:
        load = rate_per_s * service_s
        needed = max(needed, math.ceil(load / policy.target_utilisation - _EPSILON))
    return needed


def model_needs(tick: Tick, estimates: Estimates) -> Needs:
    """Evaluate the capacity model on the estimates, and the waits (module docstring)."""
    signals, state, policy = tick.signals, tick.state, tick.policy
    service_s = estimates.service_slow_s or estimates.service_s
    cv = estimates.service_cv

    def size(rate: float | None) -> int | None:
        return capacity_workers(rate, service_s, policy, state.correction, cv=cv)

    def held(rate: float) -> int | None:  # the size, keeping a running fleet's last worker
        return keep_last(size(rate), tick.current)

    fast, slow, raw = estimates.rate_per_s, estimates.rate_slow_per_s, signals.arrival_rate_per_s
    surge_rate = max(raw, fast) if raw is not None and fast is not None else raw
    idle_since = idle_since_s(tick)
    steady = up = down = None
    if idle_since is not None and tick.now_s - idle_since >= policy.scale_to_zero_after_s:
        steady = up = down = 0  # idle long enough: none needed (`min` permitting)
    elif slow is not None:
        spread = SPREAD_Z * estimates.rate_spread_per_s()
        band = BAND_Z * estimates.load_rel_sigma() * slow
        steady = held(slow + spread)
        up = held(max(0.0, slow + spread - band))
        down = held(slow + spread + math.hypot(band, spread))
    surge = size(surge_rate)
    if surge is not None and steady is not None:
        surge = max(surge, steady)
    return Needs(
        steady=steady,
        up=up,
        down=down,
        surge=surge,
        drain=drain_workers(tick, surge_rate, service_s),
        wait_ratio=wait_ratio(signals, policy),
        model_sized=surge is not None
        and tick.current >= surge
        and not in_grace(state, policy, tick.now_s),
        idle_since_s=idle_since,
    )


def keep_last(workers: int | None, current: int) -> int | None:
    """At least one worker for a fleet that has one: only the idle rule lets it go.

    A rate estimate of exactly zero (a leader that has just started, with nothing
    arriving over the rate's window) would otherwise size a running fleet at none
    the tick after it scaled from zero, before any telemetry came in.
    """
    if workers is None or current == 0:
        return workers
    return max(1, workers)


def idle_since_s(tick: Tick) -> float | None:
    """Since when the fleet has been idle without a break, or None when it is not idle.

    Idle: no arrivals over the rate's window, nothing waiting, and no worker busy (a
    busy fraction of 0, or none at all when no worker is up). Until the fleet has been
    idle for `scale_to_zero_after_s` the decaying rate estimates size it, which keeps a
    fleet that pauses between bursts ready for the next one; alone they would never
    quite reach zero. Stale telemetry still holds a scale-down (`_quiet`).
    """
    signals = tick.signals
    idle = (
        signals.arrival_rate_per_s == 0.0
        and signals.backlog == 0
        and signals.head_of_line_age_s == 0.0
        and not signals.busy_fraction
    )
    if not idle:
        return None
    since_s = tick.state.idle_since_s
    return tick.now_s if since_s is None else since_s


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


def recommend(tick: Tick, needs: Needs) -> Step:
    """Return the raw recommendation before stabilisation, limits and clamps.

    From zero with work waiting: the surge or drain size at once (at least one worker).
    On a breach: the urgent scale-up. Otherwise the band rule of the module docstring;
    the band's high end is what stabilisation remembers.
    """
    signals, current = tick.signals, tick.current
    if current == 0 and _has_work(signals):
        start = max(1, needs.surge or 0, needs.drain or 0)
        return Step(start, Reason.SCALE_FROM_ZERO, True, needs.down)
    breach = grow_on_breach(tick, needs)
    if breach is not None:
        return breach
    steady, up, down = needs.steady, needs.up, needs.down
    if steady is None or up is None or down is None:
        return Step(current, Reason.HOLD_UNKNOWN)
    if up > current:
        return Step(max(up, steady), Reason.CAPACITY_UP, record=down)
    if steady > current:
        return Step(current, Reason.WITHIN_TOLERANCE, record=down)
    if down >= current:
        return Step(current, Reason.AT_TARGET, record=down)
    hold = _quiet(signals, tick.policy)
    if hold is not None:
        return Step(current, hold, record=down)
    return Step(down, Reason.CAPACITY_DOWN, record=down)
