"""Table-driven tests of the pure scaling policy (`fleetscale.controller.policy.decide`)."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field

import pytest

from fleetscale.controller.breach import (
    DRAIN_HEADROOM,
    DRAIN_HORIZON_S,
    STARTUP_S,
    drain_workers,
)
from fleetscale.controller.capacity import erlang_c, mean_wait_s, wait_quantile_s, workers_for_wait
from fleetscale.controller.damping import URGENT_HOLD_S, limit_rate, stabilise
from fleetscale.controller.estimate import Estimates, estimate
from fleetscale.controller.learn import next_correction
from fleetscale.controller.policy import (
    HostView,
    Observation,
    Policy,
    Reason,
    State,
    decide,
)
from fleetscale.controller.policytypes import DURATION_BOUNDS_S
from fleetscale.controller.quota import assign_quotas
from fleetscale.controller.recommend import BAND_Z, Step, Tick, capacity_workers
from fleetscale.errors import ConfigurationError

NOW_S = 1000.0
POLICY = Policy(max=200)
SERVICE_S = 0.2


def hosts(running: int, count: int = 4, capacity: int = 64) -> tuple[HostView, ...]:
    """`count` hosts sharing `running` ready workers as evenly as possible."""
    share, extra = divmod(running, count)
    views = []
    for i in range(count):
        n = share + (1 if i < extra else 0)
        views.append(HostView(f"h{i}", capacity, n, n, 0))
    return tuple(views)


def observe(current: int, **changes: object) -> Observation:
    """A healthy, fresh observation of a fleet of `current` at 50 jobs/s, then `changes`."""
    base = Observation(
        wait_p50_s=0.01,
        wait_p99_s=0.1,
        head_of_line_age_s=0.0,
        backlog=current // 2,
        arrival_rate_per_s=50.0,
        service_time_s=SERVICE_S,
        busy_fraction=0.8,
        telemetry_age_s=1.0,
        hosts=hosts(current),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def remembered(current: int, rate_per_s: float | None = 50.0, **changes: object) -> State:
    """A settled state whose fast and slow estimates equal `rate_per_s` and the run time."""
    base = State(
        desired=current,
        rate_per_s=rate_per_s,
        service_s=SERVICE_S,
        smoothed_at_s=NOW_S - 1.0,
        rate_slow_per_s=rate_per_s,
        service_slow_s=SERVICE_S,
        estimates_since_s=NOW_S - 600.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def need(rate_per_s: float) -> int:
    size = capacity_workers(rate_per_s, SERVICE_S, POLICY)
    assert size is not None
    return size


def band_top(rate_per_s: float) -> int:
    """The model's size at the high end of a settled rate's noise band (no spread)."""
    settled = Estimates(
        rate_per_s=rate_per_s,
        rate_slow_per_s=rate_per_s,
        rate_scatter=None,
        rate_jump_s=None,
        service_s=SERVICE_S,
        service_slow_s=SERVICE_S,
        service_sq_s2=None,
        jobs_seen=0.0,
        since_s=NOW_S - 600.0,
        fast_tau_s=POLICY.rate_smoothing_s,
    )
    return need(rate_per_s * (1.0 + BAND_Z * settled.load_rel_sigma()))


@dataclass(frozen=True, slots=True)
class Case:
    """One decision scenario and what must hold."""

    id: str
    observation: Observation
    state: State
    reason: Reason
    desired: int | None = None
    at_least: int | None = None
    policy: Policy = POLICY


RATE_LIMIT_CEILING = max(2 * 10, 2 + 4)  # base 2 workers, ratio ×10, step 4

CASES = [
    Case(
        "an empty fleet with a backlog and an unknown run time starts one worker",
        Observation(backlog=5, head_of_line_age_s=0.1, arrival_rate_per_s=5.0, hosts=hosts(0)),
        State(desired=0),
        Reason.SCALE_FROM_ZERO,
        desired=1,
    ),
    Case(
        "an empty fleet with a backlog and a remembered run time starts the model's size",
        observe(0, wait_p99_s=None, telemetry_age_s=None, backlog=5, head_of_line_age_s=0.1),
        remembered(0),
        Reason.SCALE_FROM_ZERO,
        desired=need(50.0),
    ),
    Case(
        "a p99 breach with a slow head of line grows the fleet at once",
        observe(12, wait_p99_s=0.9, head_of_line_age_s=0.3, backlog=30),
        remembered(12),
        Reason.SLO_BREACH,
        at_least=13,
    ),
    Case(
        "an old job at the head of the line grows the fleet to drain the backlog",
        observe(12, head_of_line_age_s=2.0, backlog=212, arrival_rate_per_s=100.0),
        remembered(12),
        Reason.BACKLOG,
        at_least=need(100.0) + 1,
    ),
    Case(
        "a capacity need well above the fleet scales up without a breach",
        observe(12, arrival_rate_per_s=100.0),
        remembered(12, 100.0),
        Reason.CAPACITY_UP,
        desired=need(100.0),
    ),
    Case(
        "a fleet one short of the model scales up when even the band's low end needs more",
        observe(need(50.0) - 1),
        remembered(need(50.0) - 1),
        Reason.CAPACITY_UP,
        desired=need(50.0),
    ),
    Case(
        "a capacity need well below the fleet with quiet waits scales down to the band's top",
        observe(16, arrival_rate_per_s=40.0),
        remembered(16, 40.0),
        Reason.CAPACITY_DOWN,
        desired=band_top(40.0),
    ),
    Case(
        "a fleet at the model's size holds",
        observe(need(50.0)),
        remembered(need(50.0)),
        Reason.AT_TARGET,
        desired=need(50.0),
    ),
    Case(
        "a need just above the fleet but within the rate's noise band holds",
        observe(23, arrival_rate_per_s=100.0),
        remembered(23, 100.0),
        Reason.WITHIN_TOLERANCE,
        desired=23,
    ),
    Case(
        "a shrink within tolerance of the fleet holds",
        observe(26, arrival_rate_per_s=100.0),
        remembered(26, 100.0),
        Reason.WITHIN_TOLERANCE,
        desired=26,
    ),
    Case(
        "a capacity need below the fleet holds while p99 is over half the target",
        observe(16, arrival_rate_per_s=40.0, wait_p99_s=0.3),
        remembered(16, 40.0),
        Reason.WAIT_GUARD,
        desired=16,
    ),
    Case(
        "a capacity need below the fleet holds within the stabilisation window",
        observe(16, arrival_rate_per_s=40.0),
        remembered(16, 40.0, recommendations=((NOW_S - 5.0, 16),)),
        Reason.STABILISING,
        desired=16,
    ),
    Case(
        "an unknown arrival rate holds",
        observe(16, arrival_rate_per_s=None),
        remembered(16, None),
        Reason.HOLD_UNKNOWN,
        desired=16,
    ),
    Case(
        "stale telemetry never shrinks the fleet",
        observe(16, arrival_rate_per_s=40.0, telemetry_age_s=60.0),
        remembered(16, 40.0),
        Reason.HOLD_UNKNOWN,
        desired=16,
    ),
    Case(
        "telemetry of unknown age never shrinks the fleet",
        observe(16, arrival_rate_per_s=40.0, telemetry_age_s=None),
        remembered(16, 40.0),
        Reason.HOLD_UNKNOWN,
        desired=16,
    ),
    Case(
        "growth beyond ×10 or +4 per period is rate limited",
        observe(2, arrival_rate_per_s=500.0),
        remembered(2, 500.0),
        Reason.RATE_LIMITED,
        desired=RATE_LIMIT_CEILING,
    ),
    Case(
        "shrinking more than half the fleet within the period is rate limited",
        observe(40, arrival_rate_per_s=10.0),
        remembered(40, 10.0),
        Reason.RATE_LIMITED,
        desired=20,
    ),
    Case(
        "a spent change budget holds a non-urgent scale-up",
        observe(12, arrival_rate_per_s=100.0),
        remembered(12, 100.0, changes=tuple((NOW_S - 300.0 + i, 12) for i in range(60))),
        Reason.CHANGE_BUDGET,
        desired=12,
    ),
    Case(
        "a spent change budget never holds an urgent scale-up",
        observe(12, head_of_line_age_s=2.0, backlog=212, arrival_rate_per_s=100.0),
        remembered(12, 100.0, changes=tuple((NOW_S - 300.0 + i, 12) for i in range(60))),
        Reason.BACKLOG,
        at_least=13,
    ),
    Case(
        "a need under the policy minimum is clamped up to it",
        observe(12, arrival_rate_per_s=10.0),
        remembered(12, 10.0),
        Reason.CLAMPED_MIN,
        desired=10,
        policy=dataclasses.replace(POLICY, min=10),
    ),
    Case(
        "a need over the policy maximum is clamped down to it",
        observe(12, arrival_rate_per_s=100.0),
        remembered(12, 100.0),
        Reason.CLAMPED_MAX,
        desired=15,
        policy=dataclasses.replace(POLICY, max=15),
    ),
    Case(
        "a need over the hosts' total capacity is clamped to it",
        observe(12, arrival_rate_per_s=100.0, hosts=hosts(12, count=2, capacity=8)),
        remembered(12, 100.0),
        Reason.HOST_CAPACITY,
        desired=16,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide_gives_the_expected_reason_and_size(case: Case) -> None:
    decision = decide(case.observation, case.state, case.policy, NOW_S)
    assert decision.reason is case.reason, (
        f"{case.id}: reason should be {case.reason}, got {decision.reason} "
        f"(desired {decision.desired}, inputs {decision.inputs})"
    )
    if case.desired is not None:
        assert decision.desired == case.desired, f"{case.id}: desired {decision.desired}"
    if case.at_least is not None:
        assert decision.desired >= case.at_least, f"{case.id}: desired {decision.desired}"


def test_every_reason_code_is_covered_by_a_case() -> None:
    assert {case.reason for case in CASES} == set(Reason)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_quotas_sum_to_desired_and_respect_every_host_capacity(case: Case) -> None:
    decision = decide(case.observation, case.state, case.policy, NOW_S)
    capacity = {view.host: view.capacity for view in case.observation.hosts}
    assert sum(decision.quotas.values()) == decision.desired
    assert all(decision.quotas[host] <= capacity[host] for host in decision.quotas)
    assert set(decision.quotas) == set(capacity)


@dataclass(frozen=True, slots=True)
class UnknownCase:
    """A fleet whose signals are missing, which must never shrink."""

    id: str
    observation: Observation


UNKNOWN = [
    UnknownCase("everything unknown", Observation(hosts=hosts(20))),
    UnknownCase("only the rate known", Observation(arrival_rate_per_s=1.0, hosts=hosts(20))),
    UnknownCase("an empty queue with stale telemetry", observe(20, telemetry_age_s=99.0)),
    UnknownCase(
        "stale telemetry and zero arrivals",
        observe(20, telemetry_age_s=99.0, arrival_rate_per_s=0.0, backlog=0),
    ),
    UnknownCase("an unknown head of line", observe(20, head_of_line_age_s=None, backlog=None)),
]


@pytest.mark.parametrize("case", UNKNOWN, ids=[case.id for case in UNKNOWN])
def test_unknown_or_stale_signals_never_shrink_the_fleet(case: UnknownCase) -> None:
    state = State(desired=20)
    for tick in range(30):
        decision = decide(case.observation, state, POLICY, NOW_S + tick)
        assert decision.desired >= 20, f"{case.id}: shrank to {decision.desired} at tick {tick}"
        state = decision.state


def test_a_scale_down_waits_for_the_stabilisation_window_to_pass() -> None:
    state = remembered(24, 100.0)
    quiet = observe(24, arrival_rate_per_s=100.0)
    state = decide(quiet, state, POLICY, NOW_S).state
    low = observe(24, arrival_rate_per_s=40.0)
    sizes = []
    for tick in range(1, 40):
        decision = decide(low, state, POLICY, NOW_S + tick)
        sizes.append((tick, decision.desired))
        state = decision.state
    first_shrink = next(tick for tick, size in sizes if size < 24)
    assert first_shrink >= POLICY.scale_down_stabilisation_s, sizes


def test_within_the_start_up_grace_a_breach_does_not_compound() -> None:
    breach = observe(12, wait_p99_s=1.0, head_of_line_age_s=0.3, backlog=30)
    first = decide(breach, remembered(12), POLICY, NOW_S)
    second = decide(breach, first.state, POLICY, NOW_S + 1.0)
    assert first.desired > 12
    assert second.desired == first.desired, (first.desired, second.desired)


def idle(current: int) -> Observation:
    """A fresh observation of a fleet of `current` with no arrivals, nothing waiting
    and nobody busy (no busy fraction at all once no worker is up)."""
    return observe(
        current,
        wait_p50_s=None,
        wait_p99_s=None,
        backlog=0,
        arrival_rate_per_s=0.0,
        busy_fraction=0.0 if current else None,
        telemetry_age_s=1.0 if current else None,
    )


def run_idle(policy: Policy, seconds: int, current: int = 6) -> list[int]:
    """Decide once a second on an idle fleet that had been busy at 20 jobs/s."""
    state, sizes = remembered(current, 20.0), []
    for tick in range(1, seconds + 1):
        decision = decide(idle(current), state, policy, NOW_S + tick)
        state, current = decision.state, decision.desired
        sizes.append(current)
    return sizes


def test_an_idle_fleet_with_min_zero_scales_to_zero_after_the_idle_period_and_stays() -> None:
    policy = dataclasses.replace(POLICY, scale_to_zero_after_s=120.0)
    sizes = run_idle(policy, 400)
    first_zero = sizes.index(0) + 1
    assert policy.scale_to_zero_after_s <= first_zero <= 180, sizes
    assert min(sizes[: int(policy.scale_to_zero_after_s) - 1]) >= 1, sizes
    assert set(sizes[first_zero - 1 :]) == {0}, sizes


def test_an_idle_fleet_keeps_min_workers() -> None:
    policy = dataclasses.replace(POLICY, min=1, scale_to_zero_after_s=60.0)
    assert run_idle(policy, 300)[-1] == 1


def test_idleness_breaks_on_any_arrival_and_restarts_the_idle_period() -> None:
    policy = dataclasses.replace(POLICY, scale_to_zero_after_s=60.0)
    state, current = remembered(2, 0.5), 2
    for tick in range(1, 200):
        busy = tick % 50 == 0
        seen = observe(2, arrival_rate_per_s=0.5, busy_fraction=0.1) if busy else idle(current)
        decision = decide(seen, state, policy, NOW_S + tick)
        state, current = decision.state, decision.desired
        assert current >= 1, f"went to zero {tick % 50} s after the last arrival"


def test_a_leader_starting_on_an_old_backlog_keeps_the_worker_it_started() -> None:
    # The rate over its window is exactly zero (the backlog is old), so the capacity
    # model alone would size the fleet at none the tick after the start from zero.
    backlog = observe(0, backlog=5, head_of_line_age_s=3.0, arrival_rate_per_s=0.0)
    start = decide(dataclasses.replace(backlog, telemetry_age_s=None), State(), POLICY, NOW_S)
    assert (start.desired, start.reason) == (1, Reason.SCALE_FROM_ZERO)
    state, sizes = start.state, []
    for tick in range(1, 60):
        decision = decide(idle(1), state, POLICY, NOW_S + tick)
        state = decision.state
        sizes.append(decision.desired)
    assert set(sizes) == {1}, sizes


def test_the_rate_limit_lets_the_last_worker_go() -> None:
    step = Step(0, Reason.CAPACITY_DOWN)
    tick = Tick(idle(1), remembered(1, 0.0), POLICY, NOW_S, 1)
    assert limit_rate(tick, step).value == 0


def test_after_a_start_from_zero_growth_is_limited_from_that_start_not_from_zero() -> None:
    started = NOW_S - 2.0
    state = remembered(4, changes=((started - 100.0, 0), (started, 4)))
    tick = Tick(observe(4), state, POLICY, NOW_S, 4)
    ceiling = max(4 * POLICY.scale_up_step_ratio, 4 + POLICY.scale_up_step_workers)
    assert limit_rate(tick, Step(100, Reason.BACKLOG, urgent=True)).value == ceiling


def poisson_rate(rng: random.Random, rate_per_s: float, window_s: float = 2.0) -> float:
    """A rate read from Poisson arrivals counted over `window_s` (what the stream gives)."""
    count, t_s = 0, rng.expovariate(rate_per_s)
    while t_s < window_s:
        count, t_s = count + 1, t_s + rng.expovariate(rate_per_s)
    return count / window_s


def run_ticks(rates: list[float], state: State, current: int) -> list[int]:
    """Decide once a second on quiet observations at these rates; return the sizes."""
    sizes = []
    for tick, rate in enumerate(rates, start=1):
        decision = decide(observe(current, arrival_rate_per_s=rate), state, POLICY, NOW_S + tick)
        state, current = decision.state, decision.desired
        sizes.append(current)
    return sizes


def test_a_stationary_noisy_rate_never_moves_a_fleet_sized_for_it() -> None:
    rng = random.Random(7)
    rates = [poisson_rate(rng, 60.0) for _ in range(1800)]
    sizes = run_ticks(rates, remembered(need(60.0), 60.0), need(60.0))
    assert set(sizes) == {need(60.0)}, sorted(set(sizes))


def test_a_lasting_rise_of_the_rate_is_followed_within_three_fast_time_constants() -> None:
    rng = random.Random(7)
    rates = [poisson_rate(rng, 120.0) for _ in range(30)]
    sizes = run_ticks(rates, remembered(need(60.0), 60.0), need(60.0))
    within = int(3 * POLICY.rate_smoothing_s)
    assert max(sizes[:within]) >= need(110.0), sizes


def settle(observations: list[Observation], state: State | None = None) -> Estimates:
    """Fold observations one second apart into the estimates; return the last ones."""
    state = state or State()
    result = None
    for tick, observation in enumerate(observations):
        result = estimate(observation, state, POLICY, NOW_S + tick)
        state = dataclasses.replace(
            state,
            rate_per_s=result.rate_per_s,
            rate_slow_per_s=result.rate_slow_per_s,
            rate_scatter=result.rate_scatter,
            rate_jump_s=result.rate_jump_s,
            service_s=result.service_s,
            service_slow_s=result.service_slow_s,
            service_sq_s2=result.service_sq_s2,
            jobs_seen=result.jobs_seen,
            estimates_since_s=result.since_s,
            smoothed_at_s=NOW_S + tick,
        )
    assert result is not None
    return result


def test_the_slow_rate_starts_as_a_running_mean() -> None:
    rates = [Observation(arrival_rate_per_s=r) for r in (50.0, 52.0, 54.0)]
    assert settle(rates).rate_slow_per_s == pytest.approx(52.0)


def test_the_slow_rate_jumps_to_the_fast_one_on_a_change_beyond_noise() -> None:
    steady = [Observation(arrival_rate_per_s=60.0)] * 120
    stepped = settle(steady + [Observation(arrival_rate_per_s=240.0)] * 3)
    assert stepped.rate_slow_per_s == stepped.rate_per_s
    assert stepped.rate_per_s is not None and stepped.rate_per_s > 100.0


def test_the_run_time_cv_comes_from_the_smoothed_moments_weighed_by_jobs() -> None:
    few_long = Observation(service_time_s=2.0, service_cv=0.0, completed_per_s=1.0)
    many = Observation(service_time_s=0.2, service_cv=3.0, completed_per_s=300.0)
    result = settle([few_long] + [many] * 60)
    assert result.service_slow_s == pytest.approx(0.2, rel=0.01)
    assert result.service_cv == pytest.approx(3.0, rel=0.05)


def test_the_rate_spread_is_zero_for_a_steady_rate_and_grows_when_the_rate_moves() -> None:
    steady = settle([Observation(arrival_rate_per_s=60.0)] * 300)
    # 20 s at 50/s, 20 s at 70/s: a swing too slow to be noise, too small to be a jump
    swinging = [Observation(arrival_rate_per_s=50.0 + 20.0 * (t // 20 % 2)) for t in range(300)]
    moving = settle(swinging)
    assert steady.rate_spread_per_s() == 0.0
    assert moving.rate_spread_per_s() > 2.0


@dataclass(frozen=True, slots=True)
class LearnCase:
    """One tick of the SLO-budget feedback and where the correction must go."""

    id: str
    share: float
    correction: float
    p99_s: float | None
    model_sized: bool
    moves: str  # "up", "down" or "none"


LEARN = [
    LearnCase("breaches over budget at model size grow it", 0.05, 1.0, 0.9, True, "up"),
    LearnCase("a share under budget relaxes it toward one", 0.001, 1.5, 0.1, True, "down"),
    LearnCase("a share within budget holds it", 0.01, 1.5, 0.1, True, "none"),
    LearnCase("it never relaxes below one", 0.0, 1.0, 0.1, True, "none"),
    LearnCase("a fleet short of the model teaches nothing", 0.05, 1.0, 0.9, False, "none"),
    LearnCase("an unknown p99 teaches nothing", 0.05, 1.0, None, True, "none"),
]


@pytest.mark.parametrize("case", LEARN, ids=[case.id for case in LEARN])
def test_the_model_correction_follows_the_breach_share(case: LearnCase) -> None:
    state = State(smoothed_at_s=NOW_S - 60.0, breach_share=case.share, correction=case.correction)
    signals = Observation(wait_p99_s=case.p99_s)
    correction, _ = next_correction(signals, state, POLICY, NOW_S, case.model_sized)
    moved = (
        "up" if correction > case.correction else "down" if correction < case.correction else "none"
    )
    assert moved == case.moves, f"{case.id}: {case.correction} → {correction}"
    assert correction >= 1.0


def test_a_modest_urgent_scale_up_is_not_partly_undone_within_the_hold() -> None:
    state = remembered(16, 50.0, urgent=(NOW_S - 10.0, 12))
    tick = Tick(observe(16), state, POLICY, NOW_S, 16)
    partly = stabilise(tick, Step(14, Reason.CAPACITY_DOWN, record=14), ())
    fully = stabilise(tick, Step(12, Reason.CAPACITY_DOWN, record=12), ())
    later = dataclasses.replace(tick, now_s=NOW_S + URGENT_HOLD_S)
    afterwards = stabilise(later, Step(14, Reason.CAPACITY_DOWN, record=14), ())
    assert (partly.value, partly.reason) == (16, Reason.STABILISING)
    assert (fully.value, afterwards.value) == (12, 14)


@pytest.mark.parametrize(("queued", "rate_per_s", "ready"), [(200, 100.0, 12), (40, 60.0, 14)])
def test_the_drain_size_is_the_fewest_workers_that_soon_serve_arrivals_in_time(
    queued: int, rate_per_s: float, ready: int
) -> None:
    signals = observe(ready, head_of_line_age_s=2.0, backlog=queued + ready)
    workers = drain_workers(Tick(signals, State(), POLICY, NOW_S, ready), rate_per_s, SERVICE_S)
    assert workers is not None

    def late_wait_s(fleet: int) -> float:
        grown = queued + max(0.0, rate_per_s - ready / SERVICE_S) * STARTUP_S
        left = grown - (fleet / SERVICE_S - rate_per_s) * DRAIN_HORIZON_S
        return max(left, 0.0) * SERVICE_S / fleet

    allowed_s = POLICY.target_p99_s * DRAIN_HEADROOM
    assert late_wait_s(workers) <= allowed_s + 1e-9 < late_wait_s(workers - 1)


def test_the_drain_size_counts_workers_running_on_where_a_controller_lapsed() -> None:
    # Held at their share (quota.hold), they serve the queue: leaving them out sized the
    # drain as if they were not there.
    attended = observe(12, head_of_line_age_s=2.0, backlog=200)
    lapsed = observe(9, head_of_line_age_s=2.0, backlog=200, unattended=(("paused", 3),))
    sizes = [drain_workers(Tick(o, State(), POLICY, NOW_S, 12), 100.0, SERVICE_S)
             for o in (attended, lapsed)]  # fmt: skip
    assert sizes[0] is not None and sizes[0] == sizes[1], sizes


def test_decide_is_pure_the_same_inputs_give_the_same_decision() -> None:
    observation = observe(12, wait_p99_s=0.9, head_of_line_age_s=0.3, backlog=30)
    state = remembered(12)
    assert decide(observation, state, POLICY, NOW_S) == decide(observation, state, POLICY, NOW_S)
    assert state == remembered(12)


def test_the_rate_ewma_moves_toward_a_new_sample_by_its_time_constant() -> None:
    state = remembered(12, 50.0)
    decision = decide(observe(12, arrival_rate_per_s=150.0), state, POLICY, NOW_S)
    # one second after the last update, weight = 1 − exp(−1/τ)
    weight = 1 - math.exp(-1.0 / POLICY.rate_smoothing_s)
    assert decision.state.rate_per_s == pytest.approx(50.0 + weight * 100.0)


def test_a_dry_run_host_beside_real_ones_is_given_no_quota() -> None:
    real, dry = HostView("real", 8, 4, 4, 0), HostView("dry", 8, 0, 0, 0, dry_run=True)
    observation = observe(4, hosts=(dry, real), arrival_rate_per_s=50.0)
    decision = decide(observation, remembered(4), POLICY, NOW_S)
    assert decision.quotas == {"real": decision.desired}, decision.quotas


def test_a_fleet_of_dry_run_hosts_only_is_still_told_the_size_a_real_one_would_need() -> None:
    dry = tuple(HostView(f"dry{i}", 8, 0, 0, 0, dry_run=True) for i in range(2))
    observation = observe(6, hosts=dry)
    decision = decide(observation, remembered(6), POLICY, NOW_S)
    real = decide(observe(6, hosts=tuple(dataclasses.replace(h, dry_run=False) for h in dry)),
                  remembered(6), POLICY, NOW_S)  # fmt: skip
    assert decision.desired == real.desired > 0


def test_quotas_are_sticky_growing_by_one_changes_one_host() -> None:
    capacities = {"a": 8, "b": 8, "c": 8}
    before = {"a": 3, "b": 2, "c": 3}
    after = assign_quotas(9, capacities, before)
    changed = [host for host in capacities if after[host] != before[host]]
    assert changed == ["b"], after


def test_quotas_shrink_from_the_fullest_host_and_drop_hosts_that_left() -> None:
    after = assign_quotas(4, {"a": 4, "b": 8}, {"a": 4, "b": 2, "gone": 5})
    assert after == {"a": 2, "b": 2}


def test_quotas_never_exceed_capacity_even_when_it_shrank() -> None:
    after = assign_quotas(10, {"a": 2, "b": 20}, {"a": 9, "b": 1})
    assert after == {"a": 2, "b": 8}


@dataclass(frozen=True, slots=True)
class BadSetting:
    """A policy value that must be refused, and a word the error must name."""

    id: str
    settings: dict[str, str] = field(default_factory=dict)
    names: str = ""


BAD = [
    BadSetting("zero target", {"target_p99": "0"}, "target_p99_s"),
    # Waits are measured up to 600 s: a longer target could never be seen missed.
    BadSetting("a target beyond the measured waits", {"target_p99": "601s"}, "at most 600 s"),
    BadSetting("min above max", {"min": "9", "max": "3"}, "min=9"),
    BadSetting("tolerance of one", {"tolerance": "1"}, "tolerance"),
    BadSetting("utilisation over one", {"target_utilisation": "1.5"}, "target_utilisation"),
    BadSetting("a bad duration", {"scale_down_stabilisation_s": "soon"}, "soon"),
    BadSetting("an unknown key", {"target": "1s"}, "unknown policy key"),
    BadSetting("a word for an integer", {"max": "many"}, "max='many'"),
    BadSetting("no change budget", {"change_budget": "0"}, "change_budget"),
    BadSetting("a negative idle period", {"scale_to_zero_after": "-1"}, "scale_to_zero_after_s"),
    # Infinite growth per period overflowed the rate limit in every leader in turn.
    BadSetting("an infinite step ratio", {"scale_up_step_ratio": "inf"}, "finite"),
    BadSetting("a step ratio that overflows", {"scale_up_step_ratio": "1e308"}, "1000"),
    BadSetting("not a number", {"tolerance": "nan"}, "finite"),
    # A window of days kept a recommendation a tick in the stored plan state and never
    # let the fleet scale down.
    BadSetting("a stabilisation of years", {"stabilisation": "1e12"}, "at most 3600 s"),
    BadSetting("a scale-up period over 30m", {"scale_up_period": "31m"}, "scale_up_period_s"),
    BadSetting("a smoothing of hours", {"rate_smoothing": "2h"}, "rate_smoothing_s"),
    BadSetting("a startup grace of days", {"startup_grace": "48h"}, "startup_grace_s"),
    BadSetting("an idle period over a day", {"scale_to_zero_after": "25h"}, "at most 86400 s"),
]


def test_every_duration_of_a_policy_has_bounds() -> None:
    durations = {name for name in Policy().to_dict() if name.endswith("_s")}
    assert durations - {"target_p99_s"} == set(DURATION_BOUNDS_S)


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_invalid_policy_values_are_refused_with_a_one_line_message(case: BadSetting) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Policy.from_settings(case.settings)
    message = str(raised.value)
    assert case.names in message and "\n" not in message, message


def test_policy_settings_parse_durations_and_aliases_and_round_trip() -> None:
    policy = Policy.from_settings({"target_p99": "300ms", "stabilisation": "1m", "max": "40"})
    assert (policy.target_p99_s, policy.scale_down_stabilisation_s, policy.max) == (0.3, 60.0, 40)
    again = Policy().with_updates(**{k: str(v) for k, v in policy.to_dict().items()})
    assert again == policy


def test_erlang_c_matches_a_textbook_value() -> None:
    # Two servers, offered load 1: P(wait) = 1/3 (Kleinrock, M/M/2 at ρ = 0.5).
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert mean_wait_s(2, 1.0, 1.0) == pytest.approx(1 / 3)


def textbook_erlang_c(workers: int, load: float) -> float:
    """Erlang C from the full Erlang-B recursion, B(0) = 1, B(k) = aB / (k + aB)."""
    blocking = 1.0
    for k in range(1, workers + 1):
        blocking = load * blocking / (k + load * blocking)
    return workers * blocking / (workers - load * (1.0 - blocking))


@pytest.mark.parametrize("load", [0.05, 0.9, 7.5, 42.0, 170.3, 999.9, 4321.0])
def test_erlang_c_started_below_the_load_equals_the_full_recursion(load: float) -> None:
    for workers in range(math.floor(load) + 1, math.floor(load + 8 * math.sqrt(load)) + 3):
        full = textbook_erlang_c(workers, load)
        assert erlang_c(workers, load) == pytest.approx(full, rel=1e-12), workers


def test_the_fewest_workers_for_a_wait_target_is_the_first_that_meets_it() -> None:
    workers = workers_for_wait(100.0, 0.2, 0.5)
    assert wait_quantile_s(workers, 100.0, 0.2) <= 0.5 < wait_quantile_s(workers - 1, 100.0, 0.2)


def test_a_fleet_idle_for_hours_keeps_deciding_as_its_rate_estimates_decay_to_nothing() -> None:
    assert workers_for_wait(5e-324, 0.2, 0.5) == 0  # the load underflows to zero
    policy = dataclasses.replace(POLICY, min=1, scale_to_zero_after_s=60.0)
    assert run_idle(policy, 4 * 3600)[-1] == 1


def test_a_window_of_jobs_too_short_to_time_does_not_break_the_decision() -> None:
    state = dataclasses.replace(remembered(4), service_s=None, service_slow_s=None)
    signals = observe(4, service_time_s=0.0, head_of_line_age_s=2.0, backlog=400)
    decision = decide(signals, state, POLICY, NOW_S)
    assert decision.desired >= 4, decision
