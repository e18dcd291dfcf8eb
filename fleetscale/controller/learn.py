"""SLO-budget feedback: correct the capacity model by the breaches it lets through.

The queueing model (Erlang C with the Allen–Cunneen correction for the measured run-time
cv) is an approximation: too optimistic for some run-time distributions, too
pessimistic for others, and its inputs are estimates. So the policy measures how often
the p99 wait breaches the target *while the fleet is model-sized* (at least the model's
surge size, outside the start-up grace, so that a breach is the model's fault, not a
load change the fleet is still catching up with), and corrects the offered load the
queueing model sizes for:

- `breach_share` is an EWMA, time constant `SHARE_WINDOW_S`, of 1 for a tick whose
  p99 wait is over the target and 0 for one within it;
- above `SHARE_HIGH` (the 2 % of windows an SLO of 98 % allows) the correction grows
  by `GROW_PER_MIN` a minute: the model under-sizes;
- below `SHARE_LOW` it relaxes by `SHRINK_PER_MIN` a minute, back toward 1;
- in between it holds, so the correction does not hunt on a fleet that is right.

It scales the queueing part of the model only (never the target-utilisation size), and
it moves slowly on purpose: it corrects a model bias over tens of minutes (a real
controller runs for days), while breaches that need workers now are the urgent path's
job. It never goes below 1: a model that over-sizes cannot be told apart, within the
hour, from a lucky stretch of few breaches, so the feedback only adds.
"""

from __future__ import annotations

import math

from fleetscale.controller.policytypes import Observation, Policy, State

SHARE_WINDOW_S = 1800.0
"""Time constant of the breach-share EWMA, seconds: breaches come in rare clusters, so
telling a 1 % share from a 3 % one takes tens of minutes of evidence."""

SHARE_HIGH = 0.02
"""Breach share above which the correction grows."""

SHARE_LOW = 0.005
"""Breach share below which the correction shrinks."""

GROW_PER_MIN = 0.10
"""Relative growth of the correction per minute while the share is high."""

SHRINK_PER_MIN = 0.03
"""Relative shrinkage of the correction per minute while the share is low."""

CORRECTION_MIN = 1.0
"""The least correction: the feedback only ever adds capacity to the model."""

CORRECTION_MAX = 3.0
"""The most correction: the model may under-size by at most ×3."""


def next_correction(
    signals: Observation, state: State, policy: Policy, now_s: float, model_sized: bool
) -> tuple[float, float]:
    """Return the (correction, breach share) to remember after this tick.

    Args:
        signals: this tick's fresh signals (a None p99 teaches nothing).
        state: the previous state (its correction, share and update time).
        policy: the policy in force (its target).
        now_s: the caller's clock, seconds.
        model_sized: whether the fleet is at least the model's surge size and out of
            the start-up grace, so that a breach now is the model's to answer for.
    """
    p99 = signals.wait_p99_s
    last_s = state.smoothed_at_s
    if p99 is None or last_s is None or not model_sized:
        return state.correction, state.breach_share
    elapsed_s = max(now_s - last_s, 0.0)
    weight = 1.0 - math.exp(-elapsed_s / SHARE_WINDOW_S)
    breach = 1.0 if p99 > policy.target_p99_s else 0.0
    share = state.breach_share + weight * (breach - state.breach_share)
    minutes = elapsed_s / 60.0
    correction = state.correction
    if share > SHARE_HIGH:
        correction *= (1.0 + GROW_PER_MIN) ** minutes
    elif share < SHARE_LOW:
        correction *= (1.0 - SHRINK_PER_MIN) ** minutes
    return min(CORRECTION_MAX, max(CORRECTION_MIN, correction)), share
