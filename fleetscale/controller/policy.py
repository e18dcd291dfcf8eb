"""The scaling policy: a pure `decide(observation, state, policy, now_s) -> Decision`.

The decision is a chain of small pure steps, each returning a value and a reason
(after the Kubernetes HPA's replica calculator, without its clock reads and mutation):

1. **freshness**: telemetry older than `max_signal_age_s` is unknown;
2. **estimates** (`fleetscale.controller.estimate`): fast and slow EWMAs of the arrival
   rate, the run time and its cv, and the rate's own spread;
3. **recommendation** (`fleetscale.controller.recommend`): the capacity model moves the
   fleet when the rate leaves its noise band, up to the model's size, down to the
   band's high end, behind a wait guard; the waits (p99, head-of-line age) scale up at
   once when they breach the target (`fleetscale.controller.breach`); unknown signals
   hold;
4. **stabilisation** (`fleetscale.controller.damping`): scale-down goes to the highest
   recommendation of the last `scale_down_stabilisation_s`, so one quiet tick never
   shrinks the fleet, and does not partly undo a recent modest urgent scale-up; a
   capacity scale-up goes to the lowest of the last `scale_up_stabilisation_s`;
5. **rate limits** per direction over `scale_up_period_s` / `scale_down_period_s`;
6. **change budget**: at most `change_budget` non-urgent changes per window;
7. **clamp** to `[min, max]`, then to the hosts' registered capacity, and split into
   sticky per-host quotas (`fleetscale.controller.quota`).

Alongside, the SLO-budget feedback (`fleetscale.controller.learn`) corrects the queueing
model by how often the p99 wait breaches the target while the fleet is model-sized.

`decide` does no I/O, reads no clock, logs nothing and mutates nothing: the caller passes
the previous `State` in and stores the one returned in the `Decision`. Types, settings
and their parsing live in `fleetscale.controller.policytypes` and are re-exported here.
"""

from __future__ import annotations

import dataclasses

from fleetscale.controller.damping import (
    changes,
    limit_rate,
    remember,
    remember_urgent,
    spend_budget,
    stabilise,
)
from fleetscale.controller.estimate import Estimates, estimate
from fleetscale.controller.learn import next_correction
from fleetscale.controller.policytypes import (
    Decision,
    DecisionInputs,
    HostView,
    Observation,
    Policy,
    Reason,
    State,
)
from fleetscale.controller.quota import assign_quotas, hold
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
    estimates = estimate(signals, state, policy, now_s)
    current = state.desired if state.desired is not None else _running(observation)
    tick = Tick(signals, state, policy, now_s, current)
    needs = model_needs(tick, estimates)
    step = recommend(tick, needs)
    recommendations = remember(tick, step)
    step = stabilise(tick, step, recommendations)
    step = limit_rate(tick, step)
    step = spend_budget(tick, step)
    step = _clamp(step, policy)
    quotas, step = _place(step, observation, state)
    new_state = _next_state(tick, step, estimates, needs, quotas=quotas, history=recommendations)
    inputs = DecisionInputs(
        current=current,
        rate_per_s=estimates.rate_per_s,
        service_s=estimates.service_s,
        capacity_workers=needs.steady,
        surge_workers=needs.surge,
        drain_workers=needs.drain,
        wait_ratio=needs.wait_ratio,
        correction=state.correction,
        observation=signals,
        rate_slow_per_s=estimates.rate_slow_per_s,
        rate_spread_per_s=estimates.rate_spread_per_s(),
        service_cv=estimates.service_cv,
    )
    return Decision(step.value, quotas, step.reason, inputs, new_state)


def _next_state(
    tick: Tick,
    step: Step,
    estimates: Estimates,
    needs: Needs,
    *,
    quotas: dict[str, int],
    history: tuple[tuple[float, int], ...],
) -> State:
    """The state to remember after this tick."""
    state, now_s = tick.state, tick.now_s
    correction, share = next_correction(tick.signals, state, tick.policy, now_s, needs.model_sized)
    return State(
        desired=step.value,
        quotas=tuple(sorted(quotas.items())),
        rate_per_s=estimates.rate_per_s,
        service_s=estimates.service_s,
        smoothed_at_s=now_s,
        recommendations=history,
        changes=changes(tick, step),
        last_scale_up_s=now_s if step.value > tick.current else state.last_scale_up_s,
        correction=correction,
        rate_slow_per_s=estimates.rate_slow_per_s,
        rate_scatter=estimates.rate_scatter,
        rate_jump_s=estimates.rate_jump_s,
        service_slow_s=estimates.service_slow_s,
        service_sq_s2=estimates.service_sq_s2,
        jobs_seen=estimates.jobs_seen,
        estimates_since_s=estimates.since_s,
        breach_share=share,
        urgent=remember_urgent(tick, step),
        idle_since_s=needs.idle_since_s,
    )


def fresh_signals(observation: Observation, policy: Policy) -> Observation:
    """Return the observation with telemetry-derived signals set to None when stale.

    Telemetry (wait quantiles, run times, completions, busy fraction) is stale when its age is
    unknown or above `policy.max_signal_age_s`. Stream-derived signals (head-of-line
    age, backlog, arrival rate) are read live each tick and kept as they are.
    """
    age_s = observation.telemetry_age_s
    if age_s is not None and age_s <= policy.max_signal_age_s:
        return observation
    return dataclasses.replace(
        observation,
        wait_p50_s=None,
        wait_p99_s=None,
        service_time_s=None,
        service_cv=None,
        completed_per_s=None,
        busy_fraction=None,
    )


def _offered(hosts: list[HostView] | tuple[HostView, ...]) -> dict[str, int]:
    """Capacities with a host whose workers fail to start held to one more than it runs."""
    return {
        host.host: min(host.capacity, host.running + 1) if host.failing_starts else host.capacity
        for host in hosts
    }


def _running(observation: Observation) -> int:
    return sum(host.running for host in observation.hosts)


def _clamp(step: Step, policy: Policy) -> Step:
    if step.value < policy.min:
        return Step(policy.min, Reason.CLAMPED_MIN, step.urgent, step.record)
    if step.value > policy.max:
        return Step(policy.max, Reason.CLAMPED_MAX, step.urgent, step.record)
    return step


def _place(step: Step, observation: Observation, state: State) -> tuple[dict[str, int], Step]:
    """Clamp to the hosts' total capacity and split into per-host quotas.

    Hosts of dry-run controllers start no worker, so they get no quota, unless every
    host is one (a fleet trying the policy out): then they are placed on as if they ran
    workers, and the recommendation is what a real fleet would be told.

    A host whose workers fail to start is offered one more than it runs (it keeps
    retrying), and its share goes to hosts that can start workers; it gets back, up
    to its capacity, only what they cannot hold, so the fleet is never sized down
    for it.

    Workers that run on with no controller attending them (`unattended`) keep their
    share first: handed to other hosts, it would run twice, above `max`.
    """
    hosts = [host for host in observation.hosts if not host.dry_run] or observation.hosts
    capacities = {host.host: host.capacity for host in hosts}
    held = hold(step.value, observation.unattended)
    rest = step.value - sum(held.values())
    quotas = dict(state.quotas)
    if any(host.failing_starts for host in hosts):
        quotas = assign_quotas(rest, _offered(hosts), quotas)
    quotas = assign_quotas(rest, capacities, quotas)
    placed = sum(quotas.values()) + sum(held.values())  # min(step.value, the room)
    if placed < step.value:
        step = Step(placed, Reason.HOST_CAPACITY, step.urgent, step.record)
    return quotas | held, step
