"""The anti-flap steps of `decide`: stabilisation, rate limits and the change budget.

Each takes the `Tick` and the `Step` so far and returns the next `Step`; the histories
they read (`State.recommendations`, `State.changes`, `State.urgent`) are returned new,
never mutated.
"""

from __future__ import annotations

import math

from fleetscale.controller.policytypes import Reason
from fleetscale.controller.step import Step, Tick

URGENT_HOLD_S = 60.0
"""After an urgent scale-up of at most ×`URGENT_HOLD_RATIO`, a scale-down within this
many seconds must go all the way back to the size before it, or wait, seconds."""

URGENT_HOLD_RATIO = 2.0
"""Urgent scale-ups up to this multiple of the size before them are held."""


def remember(tick: Tick, step: Step) -> tuple[tuple[float, int], ...]:
    """Append this tick's sizing recommendation to the stabilisation history."""
    policy = tick.policy
    horizon_s = tick.now_s - max(policy.scale_down_stabilisation_s, policy.scale_up_stabilisation_s)
    kept = tuple(item for item in tick.state.recommendations if item[0] > horizon_s)
    if step.record is None:
        return kept
    return (*kept, (tick.now_s, step.record))


def remember_urgent(tick: Tick, step: Step) -> tuple[float, int] | None:
    """(time, size before the episode) of the last urgent scale-up.

    Urgent scale-ups within `URGENT_HOLD_S` of each other are one episode: it keeps the
    size before its first one.
    """
    previous = tick.state.urgent
    if not (step.urgent and step.value > tick.current):
        return previous
    if previous is not None and tick.now_s - previous[0] < URGENT_HOLD_S:
        return (tick.now_s, previous[1])
    return (tick.now_s, tick.current)


def _held_after_urgent(tick: Tick, target: int) -> bool:
    """Whether a scale-down to `target` would partly undo a recent, modest urgent step.

    An urgent scale-up of up to ×`URGENT_HOLD_RATIO` is the fleet catching up with a
    load it was a little short of; on a rising load the model soon needs that size, so
    giving part of it back a few seconds later would only be undone again (a reversal
    each way). For `URGENT_HOLD_S` the fleet keeps it, unless the load fell back so far
    that the size before the episode is enough again. A bigger urgent step answers a
    surge and is released as soon as the load falls.
    """
    urgent = tick.state.urgent
    if urgent is None or tick.now_s - urgent[0] >= URGENT_HOLD_S:
        return False
    before = urgent[1]
    return tick.current <= URGENT_HOLD_RATIO * before and target > before


def stabilise(tick: Tick, step: Step, recommendations: tuple[tuple[float, int], ...]) -> Step:
    """Hold non-urgent changes until the recommendations agree over a window.

    Scale-down goes only to the highest recommendation of the last
    `scale_down_stabilisation_s`, not partly back after a modest urgent scale-up
    (`_held_after_urgent`), and not by less than `tolerance` of the current size. A
    capacity scale-up goes only to the lowest recommendation of the last
    `scale_up_stabilisation_s`. Urgent scale-ups (waits over the target) pass.
    """
    current, policy = tick.current, tick.policy
    if step.urgent or step.value == current:
        return step
    if step.value > current:
        since_s = tick.now_s - policy.scale_up_stabilisation_s
        lowest = min((v for t, v in recommendations if t > since_s), default=step.value)
        if lowest <= current:
            return Step(current, Reason.STABILISING, step.urgent, step.record)
        return Step(min(lowest, step.value), step.reason, step.urgent, step.record)
    since_s = tick.now_s - policy.scale_down_stabilisation_s
    highest = max((v for t, v in recommendations if t > since_s), default=step.value)
    target = max(highest, step.value)
    if target >= current or _held_after_urgent(tick, target):
        return Step(current, Reason.STABILISING, step.urgent, step.record)
    if target > 0 and current - target <= policy.tolerance * current:
        return Step(current, Reason.WITHIN_TOLERANCE, step.urgent, step.record)
    return Step(target, step.reason, step.urgent, step.record)


def _sizes_since(tick: Tick, period_s: float) -> list[int]:
    """Fleet sizes in effect at any time in the last `period_s` seconds."""
    since_s = tick.now_s - period_s
    sizes = [tick.current]
    before = None
    for at_s, size in tick.state.changes:
        if at_s >= since_s:
            sizes.append(size)
        else:
            before = size
    if before is not None:
        sizes.append(before)
    return sizes


def limit_rate(tick: Tick, step: Step) -> Step:
    """Cap growth per `scale_up_period_s` and shrinkage per `scale_down_period_s`.

    Growth within a period is at most max(base × ratio, base + workers) where base is
    the smallest size in the period (the HPA's rule); shrinkage removes at most a
    `scale_down_step_ratio` share of the largest size in the period, or one worker when
    that share rounds to none (so a last worker can go). Scaling from zero is exempt,
    and an empty fleet in the period is no base to grow from: the base is the smallest
    size above zero.
    """
    current, policy = tick.current, tick.policy
    if step.value > current and step.reason is not Reason.SCALE_FROM_ZERO:
        sizes = _sizes_since(tick, policy.scale_up_period_s)
        base = min((size for size in sizes if size > 0), default=0)
        ceiling = max(
            math.floor(base * policy.scale_up_step_ratio), base + policy.scale_up_step_workers
        )
        if step.value > ceiling:
            return Step(ceiling, Reason.RATE_LIMITED, step.urgent, step.record)
    if step.value < current:
        base = max(_sizes_since(tick, policy.scale_down_period_s))
        floor = min(math.ceil(base * (1.0 - policy.scale_down_step_ratio)), base - 1)
        if step.value < floor:
            return Step(min(floor, current), Reason.RATE_LIMITED, step.urgent, step.record)
    return step


def spend_budget(tick: Tick, step: Step) -> Step:
    """Hold non-urgent changes once `change_budget` changes fell within the window."""
    if step.value == tick.current or step.urgent:
        return step
    since_s = tick.now_s - tick.policy.change_budget_window_s
    used = sum(1 for at_s, _ in tick.state.changes if at_s >= since_s)
    if used >= tick.policy.change_budget:
        return Step(tick.current, Reason.CHANGE_BUDGET, step.urgent, step.record)
    return step


def changes(tick: Tick, step: Step) -> tuple[tuple[float, int], ...]:
    """The size-change history, trimmed to the longest window that reads it."""
    policy = tick.policy
    longest_s = max(
        policy.scale_up_period_s, policy.scale_down_period_s, policy.change_budget_window_s
    )
    kept = tuple(item for item in tick.state.changes if item[0] >= tick.now_s - longest_s)
    if step.value != tick.current:
        kept = (*kept, (tick.now_s, step.value))
    return kept
