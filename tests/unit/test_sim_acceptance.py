"""Issue 3's acceptance b, c and d: the default policy on every shipped trace.

Defaults throughout: target p99 500 ms, cold start-up 1 s, decision period 1 s, seed 1.
Each (trace, policy) pair is simulated once per session (about 25 s in all).

Known misses are marked `xfail(strict=True)` with the reason, so they stay visible in
every run and turn into failures the day they are fixed (then drop the mark). Both are
argued in `bench/RESULTS.md`; the bursty one is backed by a test below.
"""

from __future__ import annotations

import functools

import pytest

from fleetscale.sim.engine import SimConfig, simulate
from fleetscale.sim.report import Summary, per_hour, summarise
from fleetscale.sim.scaler import ReactiveBound, StaticScaler
from fleetscale.sim.scenario import run_scenario, trace_service
from fleetscale.sim.trace import SHIPPED, load_trace

BASELINES = ("hpa", "keda", "celery", "static")
STATIONARY_OR_SLOW = ("steady", "ramp", "diurnal", "heavy_tail")

BURSTY_ONSETS = (
    "bursty's 26 sudden ×3 onsets each lose a 10 s window unless the quiet fleet can absorb "
    "them; a policy told each new rate exactly 0.5 s after the onset needs 19 quiet workers "
    "for 0.98 (1.54× the oracle), 0.25 s after 17 (1.42×): see the reactive-bound test and "
    "RESULTS.md"
)


@functools.cache
def summary(trace: str, policy: str) -> Summary:
    return run_scenario(load_trace(trace), policy).summary


def known_miss(trace: str, misses: dict[str, str]) -> object:
    if trace in misses:
        return pytest.param(trace, marks=pytest.mark.xfail(strict=True, reason=misses[trace]))
    return trace


SLO_TRACES = [known_miss(t, {"bursty": BURSTY_ONSETS}) for t in SHIPPED if t != "spike"]


@pytest.mark.parametrize("trace", SLO_TRACES)
def test_the_default_policy_meets_the_slo_in_98_percent_of_windows(trace: str) -> None:
    result = summary(trace, "default")
    assert result.slo_attainment >= 0.98, result


COST_TRACES = [known_miss(t, {"bursty": BURSTY_ONSETS}) for t in SHIPPED]


@pytest.mark.parametrize("trace", COST_TRACES)
def test_the_default_policy_costs_at_most_1_3_times_the_oracle(trace: str) -> None:
    result = summary(trace, "default")
    assert result.worker_seconds <= 1.3 * result.oracle_worker_seconds, result


def test_jobs_wait_within_the_target_again_10_s_after_the_x4_step() -> None:
    result = summary("step", "default")
    assert result.recovery_s is not None and result.recovery_s <= 10.0, result


REVERSAL_TRACES = list(STATIONARY_OR_SLOW)


@pytest.mark.parametrize("trace", REVERSAL_TRACES)
def test_the_default_policy_reverses_at_most_6_times_an_hour(trace: str) -> None:
    result = summary(trace, "default")
    assert per_hour(result, result.reversals) <= 6.0, result


COMPARISON_MISSES = {
    ("heavy_tail", "static"): "on this stationary trace static is the oracle itself (18 "
    "workers, the exact M/G/c size, 64 800 worker-s, 0.986): costing no more means never "
    "exceeding the oracle's size from estimated rate, run time and cv; the default spends "
    "2-11 % more over seeds 1-6 (1.7 % at seed 1)"
}
COMPARISONS = [
    pytest.param(
        trace,
        base,
        id=f"{trace}-{base}",
        marks=[pytest.mark.xfail(strict=True, reason=COMPARISON_MISSES[(trace, base)])]
        if (trace, base) in COMPARISON_MISSES
        else [],
    )
    for trace in SHIPPED
    for base in BASELINES
]


@pytest.mark.parametrize(("trace", "baseline"), COMPARISONS)
def test_the_default_policy_is_cheaper_where_a_baseline_meets_the_slo_else_better(
    trace: str, baseline: str
) -> None:
    mine, theirs = summary(trace, "default"), summary(trace, baseline)
    if theirs.slo_attainment >= 0.98:
        assert mine.worker_seconds <= theirs.worker_seconds, (mine, theirs)
    else:
        assert mine.slo_attainment > theirs.slo_attainment, (mine, theirs)


@functools.cache
def reactive_bound(floor: int, delay_s: float) -> Summary:
    trace = load_trace("bursty")
    service = trace_service(trace)
    scaler = ReactiveBound(trace, service, 0.5, floor, delay_s)
    run = simulate(trace, scaler, service, SimConfig(period_s=delay_s))
    return summarise(run, service, 0.5)


@pytest.mark.parametrize("floor", range(12, 21))
def test_no_policy_told_of_bursty_onsets_half_a_second_late_meets_both_targets(
    floor: int,
) -> None:
    # The bound is told each new rate exactly, 0.5 s after it starts, and never false-
    # alarms; the quiet-phase floor is the only way to have workers up at an onset, and
    # with memoryless (exponential) quiet spells no other placement of them does better.
    result = reactive_bound(floor, 0.5)
    cost = result.worker_seconds / result.oracle_worker_seconds
    assert result.slo_attainment < 0.98 or cost > 1.3, result


def test_the_reactive_bound_meets_the_slo_with_enough_quiet_workers() -> None:
    # The other side of the argument: the bound is not simply broken.
    result = reactive_bound(20, 0.5)
    assert result.slo_attainment >= 0.98, result


def test_on_heavy_tail_a_fixed_fleet_one_below_static_misses_the_slo() -> None:
    # The heavy_tail miss against static, checked: static's 18 workers are the fewest
    # that meet 0.98 (17 attain 0.975 at seed 1), so to cost no more an online policy
    # must average at most 18 workers, and its time at 17 costs windows.
    trace = load_trace("heavy_tail")
    service = trace_service(trace)
    static = summary("heavy_tail", "static")
    smaller = StaticScaler(round(static.worker_seconds / static.duration_s) - 1)
    result = summarise(simulate(trace, smaller, service, SimConfig()), service, 0.5)
    assert static.slo_attainment >= 0.98 > result.slo_attainment, (static, result)
