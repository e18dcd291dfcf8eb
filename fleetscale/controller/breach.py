"""The urgent path of `decide`: grow at once when the waits breach the target.

A breach is a head of the line older than the target (reason BACKLOG), or a p99 wait
over it while the head of the line is at least half the target old (SLO_BREACH): the
windowed p99 lags, so a high p99 with a young head of line is an old breach already
absorbed. Both need the margin `Policy.tolerance` over the target.

The fleet grows to the larger of the surge size (the capacity model at the higher of the
raw and the fast rate) and the drain size (`drain_workers`), and by at least one worker:
a breach at the model's size says the fleet is short now, whatever the model says.
Without a model (run time unknown) it grows by the wait ratio, at most ×2. Within the
start-up grace neither minimum compounds: the workers added last time are still
starting and the windowed p99 still holds the old waits.
"""

from __future__ import annotations

import math

from fleetscale.controller.policytypes import Observation, Policy, Reason, State
from fleetscale.controller.step import Needs, Step, Tick

QUIET_FRACTION = 0.5
"""A head of line at least this share of the target old is slow; scale-down needs the
p99 wait and the head-of-line age at or under it."""

STARTUP_S = 1.0
"""Start-up of a new worker assumed when sizing a drain, seconds (a cold start; a warm
spare is faster, so this errs toward more workers)."""

DRAIN_HEADROOM = 0.8
"""New arrivals are to wait at most this share of the target behind the queue."""

DRAIN_HORIZON_S = 3.0
"""Seconds after the new workers are up by which new arrivals are served in time.

Serving them in time at once would need the whole queue gone in a fraction of the
target: for a queue of hundreds that is a fleet several times the load needs, there for
a few seconds and gone again (cost, and a reversal). Jobs already queued are late
anyway; a few seconds more of late arrivals lose no more SLO windows than one.
"""


def slow_head(age_s: float, policy: Policy) -> bool:
    """Whether the head of the line is at least `QUIET_FRACTION` of the target old."""
    return age_s >= policy.target_p99_s * QUIET_FRACTION


def in_grace(state: State, policy: Policy, now_s: float) -> bool:
    """Whether the fleet grew less than `startup_grace_s` ago."""
    last_s = state.last_scale_up_s
    return last_s is not None and now_s - last_s < policy.startup_grace_s


def wait_ratio(signals: Observation, policy: Policy) -> float | None:
    """The worse of p99 wait and head-of-line age over the target (None: both unknown)."""
    known = [s for s in (signals.wait_p99_s, signals.head_of_line_age_s) if s is not None]
    return max(known) / policy.target_p99_s if known else None


def drain_workers(tick: Tick, rate_per_s: float | None, service_s: float | None) -> int | None:
    """The fleet that soon serves new arrivals in time despite the queued jobs.

    Fluid model of a FIFO queue: a job arriving behind Q queued jobs, with c workers
    busy, waits about Q × run time ÷ c. The queue grows until the new workers are up
    (`STARTUP_S`) at the arrival rate less what the ready workers serve, to Q₀; from
    then on it shrinks by c ÷ run time − rate a second. Arrivals H = `DRAIN_HORIZON_S`
    later wait within W = `DRAIN_HEADROOM` × target when
    c ≥ run time × (Q₀ + rate × H) ÷ (W + H). Returns 0 while the head of the line is
    young, None when a signal it needs is unknown.
    """
    signals, policy = tick.signals, tick.policy
    age_s, backlog = signals.head_of_line_age_s, signals.backlog
    if age_s is None or backlog is None:
        return None
    if not slow_head(age_s, policy):
        return 0
    if service_s is None or service_s <= 0.0 or rate_per_s is None:
        return None  # a run time of 0 is a window of jobs too short to time: unknown
    # Workers still running where a controller lapsed take jobs too.
    ready = sum(host.ready for host in signals.hosts) + sum(n for _, n in signals.unattended)
    queued = max(0, backlog - ready)
    grown = queued + max(0.0, rate_per_s - ready / service_s) * STARTUP_S
    within_s = policy.target_p99_s * DRAIN_HEADROOM
    return math.ceil(
        (grown + rate_per_s * DRAIN_HORIZON_S) * service_s / (within_s + DRAIN_HORIZON_S)
    )


def grow_on_breach(tick: Tick, needs: Needs) -> Step | None:
    """Return the urgent scale-up when the waits breach the target, else None."""
    policy, signals, current = tick.policy, tick.signals, tick.current
    limit_s = policy.target_p99_s * (1 + policy.tolerance)
    age_s, p99 = signals.head_of_line_age_s, signals.wait_p99_s
    if age_s is not None and age_s > limit_s:
        reason = Reason.BACKLOG
    elif p99 is not None and p99 > limit_s and age_s is not None and slow_head(age_s, policy):
        reason = Reason.SLO_BREACH
    else:
        return None
    grace = in_grace(tick.state, policy, tick.now_s)
    if needs.surge is None or needs.drain is None:
        ratio = needs.wait_ratio or 1.0
        proportional = current if grace else math.ceil(current * min(ratio, 2))
        return Step(max(current, proportional), reason, True, needs.down)
    least = current if grace else current + 1
    return Step(max(least, needs.surge, needs.drain), reason, True, needs.down)
