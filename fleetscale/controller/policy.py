"""The scaling policy: a pure `decide(observation, state, policy, now_s) -> Decision`.

The decision is a chain of small pure steps, each returning a value and a reason
(after the Kubernetes HPA's replica calculator, without its clock reads and mutation):

1. **freshness**: telemetry older than `max_signal_age_s` is unknown;
2. **smoothing**: an EWMA of the arrival rate and service time (time constant
   `rate_smoothing_s`, exact for irregular ticks) for sizing;
3. **recommendation** (`fleetscale.controller.recommend`): the worst of p99 wait,
   head-of-line age and the capacity model scales up; the capacity model alone sizes
   scale-down, behind a wait guard; unknown signals hold;
4. **stabilisation**: scale-down goes to the highest recommendation of the last
   `scale_down_stabilisation_s`, so one quiet tick never shrinks the fleet, and a
   capacity scale-up to the lowest of the last `scale_up_stabilisation_s`;
5. **rate limits** per direction over `scale_up_period_s` / `scale_down_period_s`;
6. **change budget**: at most `change_budget` non-urgent changes per window;
7. **clamp** to `[min, max]`, then to the hosts' registered capacity, and split into
   sticky per-host quotas (`fleetscale.controller.quota`).

`decide` does no I/O, reads no clock, logs nothing and mutates nothing: the caller passes
the previous `State` in and stores the one returned in the `Decision`. Types, settings
and their parsing live in `fleetscale.controller.policytypes` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import math

from fleetscale.controller.policytypes import (
    Decision,
    DecisionInputs,
    HostView,
    Observation,
    Policy,
    Reason,
    State,
)
from fleetscale.controller.quota import assign_quotas
from fleetscale.controller.recommend import Needs, Step, Tick, model_needs, recommend

__all__ = [
    "Decision",
    "DecisionInputs",
    "HostView",
    "Observation",
    "Policy",
    "Reason",
    "State",
    "decide",
]

SERVICE_SMOOTHING_S = 60.0
"""Time constant of the service-time EWMA, seconds (at least `rate_smoothing_s`).

Run times change with deploys, not by the second, and a windowed mean of heavy-tailed
run times is noisy (cv 3 over 300 jobs: ±17 %), so it is smoothed much more than the rate.
"""

_CORRECTION_MAX = 3.0
_CORRECTION_DECAY_S = 1800.0


def decide(observation: Observation, state: State, policy: Policy, now_s: float) -> Decision:
    """Decide the fleet size and per-host quotas for one tick.

    Args:
        observation: the fleet signals read this tick (any may be None = unknown).
        state: the `State` returned by the previous decision (`State()` at first).
        policy: a validated policy.
        now_s: the caller's clock in seconds (Redis time for the real controller);
            only differences between calls matter.

    Returns:
        The decision, including the `State` to pass to the next call.
    """
    signals = fresh_signals(observation, policy)
    rate_per_s, service_s, smoothed = _smooth(signals, state, policy, now_s)
    current = state.desired if state.desired is not None else _running(observation)
    tick = Tick(signals, state, policy, now_s, current)
    needs = model_needs(tick, rate_per_s, service_s)
    step = recommend(tick, needs)
    recommendations = _remember(tick, step)
    step = _stabilise(tick, step, recommendations)
    step = _limit_rate(tick, step)
    step = _spend_budget(tick, step)
    step = _clamp(step, policy)
    quotas, step = _place(step, observation, state)
    new_state = State(
        desired=step.value,
        quotas=tuple(sorted(quotas.items())),
        rate_per_s=smoothed[0],
        service_s=smoothed[1],
        smoothed_at_s=now_s,
        recommendations=recommendations,
        changes=_changes(tick, step),
        last_scale_up_s=now_s if step.value > current else state.last_scale_up_s,
        correction=_next_correction(tick, needs),
    )
    inputs = DecisionInputs(
        current=current,
        rate_per_s=rate_per_s,
        service_s=service_s,
        capacity_workers=needs.steady,
        surge_workers=needs.surge,
        drain_workers=needs.drain,
        wait_ratio=needs.wait_ratio,
        correction=state.correction,
        observation=signals,
    )
    return Decision(step.value, quotas, step.reason, inputs, new_state)


def fresh_signals(observation: Observation, policy: Policy) -> Observation:
    """Return the observation with telemetry-derived signals set to None when stale.

    Telemetry (wait quantiles, service time, busy fraction) is stale when its age is
    unknown or above `policy.max_signal_age_s`. Stream-derived signals (head-of-line
    age, backlog, arrival rate) are read live each tick and kept as they are.
    """
    age_s = observation.telemetry_age_s
    if age_s is not None and age_s <= policy.max_signal_age_s:
        return observation
    return dataclasses.replace(
        observation, wait_p50_s=None, wait_p99_s=None, service_time_s=None, busy_fraction=None
    )


def _running(observation: Observation) -> int:
    return sum(host.running for host in observation.hosts)


def _ewma(previous: float | None, sample: float | None, weight: float) -> float | None:
    if sample is None:
        return previous
    if previous is None:
        return sample
    return previous + weight * (sample - previous)


def _smooth(
    signals: Observation, state: State, policy: Policy, now_s: float
) -> tuple[float | None, float | None, tuple[float | None, float | None]]:
    """Return (rate, service time) for sizing and the smoothed pair to remember.

    The EWMA weight is 1 − exp(−Δt/τ), so irregular ticks smooth the same as regular
    ones; τ is `rate_smoothing_s` for the rate and `SERVICE_SMOOTHING_S` for run time.
    The rate used for sizing is the smoothed one: a Poisson rate read over a few seconds
    is too noisy to size on directly (it would flap). Bursts are caught by the wait and
    head-of-line signals, which size on the raw rate (see `recommend`).
    """
    elapsed_s = now_s - state.smoothed_at_s if state.smoothed_at_s is not None else 0.0
    rate = _ewma(
        state.rate_per_s, signals.arrival_rate_per_s, _weight(elapsed_s, policy.rate_smoothing_s)
    )
    service = _ewma(
        state.service_s,
        signals.service_time_s,
        _weight(elapsed_s, max(policy.rate_smoothing_s, SERVICE_SMOOTHING_S)),
    )
    return rate, service, (rate, service)


def _weight(elapsed_s: float, tau_s: float) -> float:
    return 1.0 if tau_s <= 0 else 1.0 - math.exp(-max(elapsed_s, 0.0) / tau_s)


def _remember(tick: Tick, step: Step) -> tuple[tuple[float, int], ...]:
    """Append this tick's sizing recommendation to the stabilisation history."""
    policy = tick.policy
    horizon_s = tick.now_s - max(policy.scale_down_stabilisation_s, policy.scale_up_stabilisation_s)
    kept = tuple(item for item in tick.state.recommendations if item[0] > horizon_s)
    if step.record is None:
        return kept
    return (*kept, (tick.now_s, step.record))


def _stabilise(tick: Tick, step: Step, recommendations: tuple[tuple[float, int], ...]) -> Step:
    """Hold non-urgent changes until the recommendations agree over a window.

    Scale-down goes only to the highest recommendation of the last
    `scale_down_stabilisation_s`, and a shrink within `tolerance` of the current size
    is not worth a change. A capacity scale-up goes only to the lowest recommendation of
    the last `scale_up_stabilisation_s`, so one noisy rate reading does not add workers
    that the next quiet minute removes. Urgent scale-ups (waits over the target) pass.
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
    if target >= current:
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


def _limit_rate(tick: Tick, step: Step) -> Step:
    """Cap growth per `scale_up_period_s` and shrinkage per `scale_down_period_s`.

    Growth within a period is at most max(base × ratio, base + workers) where base is
    the smallest size in the period (the HPA's rule); shrinkage removes at most a
    `scale_down_step_ratio` share of the largest size in the period. Scaling from zero
    is exempt: an empty fleet has no base to grow from.
    """
    current, policy = tick.current, tick.policy
    if step.value > current and step.reason is not Reason.SCALE_FROM_ZERO:
        base = min(_sizes_since(tick, policy.scale_up_period_s))
        ceiling = max(
            math.floor(base * policy.scale_up_step_ratio), base + policy.scale_up_step_workers
        )
        if step.value > ceiling:
            return Step(ceiling, Reason.RATE_LIMITED, step.urgent, step.record)
    if step.value < current:
        base = max(_sizes_since(tick, policy.scale_down_period_s))
        floor = math.ceil(base * (1.0 - policy.scale_down_step_ratio))
        if step.value < floor:
            return Step(min(floor, current), Reason.RATE_LIMITED, step.urgent, step.record)
    return step


def _spend_budget(tick: Tick, step: Step) -> Step:
    """Hold non-urgent changes once `change_budget` changes fell within the window."""
    if step.value == tick.current or step.urgent:
        return step
    since_s = tick.now_s - tick.policy.change_budget_window_s
    used = sum(1 for at_s, _ in tick.state.changes if at_s >= since_s)
    if used >= tick.policy.change_budget:
        return Step(tick.current, Reason.CHANGE_BUDGET, step.urgent, step.record)
    return step


def _clamp(step: Step, policy: Policy) -> Step:
    if step.value < policy.min:
        return Step(policy.min, Reason.CLAMPED_MIN, step.urgent, step.record)
    if step.value > policy.max:
        return Step(policy.max, Reason.CLAMPED_MAX, step.urgent, step.record)
    return step


def _place(step: Step, observation: Observation, state: State) -> tuple[dict[str, int], Step]:
    """Clamp to the hosts' total capacity and split into per-host quotas."""
    capacities = {host.host: host.capacity for host in observation.hosts}
    total = sum(max(capacity, 0) for capacity in capacities.values())
    if step.value > total:
        step = Step(total, Reason.HOST_CAPACITY, step.urgent, step.record)
    quotas = assign_quotas(step.value, capacities, dict(state.quotas))
    return quotas, step


def _next_correction(tick: Tick, needs: Needs) -> float:
    """Learn how far the capacity model under-sizes, from waits measured at full size.

    When the model says the fleet is big enough yet the p99 wait still breaches the
    target outside the start-up grace, the model is wrong for this workload (typically
    heavy-tailed run times, which Erlang C under-rates): scale its answers up by the
    breach ratio, at most 25 % per tick. When p99 is under half the target the
    correction relaxes toward 1 with a 30-minute time constant.
    """
    state, p99 = tick.state, tick.signals.wait_p99_s
    correction = state.correction
    if needs.learn_ratio is not None:
        return min(_CORRECTION_MAX, correction * min(needs.learn_ratio, 1.25))
    if p99 is not None and p99 <= tick.policy.target_p99_s / 2 and correction > 1.0:
        last_s = state.smoothed_at_s if state.smoothed_at_s is not None else tick.now_s
        relax = math.exp(-max(tick.now_s - last_s, 0.0) / _CORRECTION_DECAY_S)
        correction = 1.0 + (correction - 1.0) * relax
    return correction


def _changes(tick: Tick, step: Step) -> tuple[tuple[float, int], ...]:
    """The size-change history, trimmed to the longest window that reads it."""
    policy = tick.policy
    longest_s = max(
        policy.scale_up_period_s, policy.scale_down_period_s, policy.change_budget_window_s
    )
    kept = tuple(item for item in tick.state.changes if item[0] >= tick.now_s - longest_s)
    if step.value != tick.current:
        kept = (*kept, (tick.now_s, step.value))
    return kept
