"""The simulator against queueing theory, and its parts against what they model."""

from __future__ import annotations

import json
import math
import random
import sys
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from fleetscale.cli import main
from fleetscale.controller.capacity import mean_wait_s, wait_quantile_s, workers_for_wait
from fleetscale.controller.policy import Observation
from fleetscale.errors import ConfigurationError
from fleetscale.exitcode import ExitCode
from fleetscale.sim.engine import SimConfig, simulate, ticks
from fleetscale.sim.pool import StartUp, WorkerPool
from fleetscale.sim.report import (
    WARMUP_S,
    Summary,
    nearest_rank,
    per_hour,
    reversals,
    summarise,
)
from fleetscale.sim.scaler import POLICIES, CeleryScaler, HpaScaler, KedaScaler, StaticScaler
from fleetscale.sim.scenario import run_scenario, sim_policy
from fleetscale.sim.service import exponential, service_time
from fleetscale.sim.telemetry import Telemetry
from fleetscale.sim.trace import SHIPPED, Trace, load_trace, parse_trace


def test_simulated_mmc_waits_match_erlang_c_within_five_percent() -> None:
    # M/M/10 at ρ = 0.7: four seeds × 2 h pooled (≈ 1 M jobs) keep the sampling error
    # of the mean and the p99 near 1.5 %, well inside the 5 % the check allows.
    workers, rate, service_s = 10, 35.0, 0.2
    trace = Trace("mmc", ((0.0, rate),), 7200.0)
    waits: list[float] = []
    for seed in range(1, 5):
        run = simulate(trace, StaticScaler(workers), exponential(service_s), SimConfig(seed=seed))
        first = next(i for i, a in enumerate(run.arrivals_s) if a >= WARMUP_S)
        waits.extend(run.waits_s[first:])
    waits.sort()
    expected_mean = mean_wait_s(workers, rate, service_s)
    expected_p99 = wait_quantile_s(workers, rate, service_s)
    assert sum(waits) / len(waits) == pytest.approx(expected_mean, rel=0.05)
    assert nearest_rank(waits, 0.99) == pytest.approx(expected_p99, rel=0.05)


def test_a_seed_fixes_the_whole_run_and_another_seed_changes_it() -> None:
    trace = load_trace("step")
    first = run_scenario(trace, "default", config=SimConfig(seed=3))
    again = run_scenario(trace, "default", config=SimConfig(seed=3))
    other = run_scenario(trace, "default", config=SimConfig(seed=4))
    assert first.summary == again.summary and first.run.timeline == again.run.timeline
    assert first.summary.jobs != other.summary.jobs


def one_job_trace(arrival_s: float) -> Trace:
    return parse_trace(f"arrival_s\n{arrival_s}\n", "one")


@dataclass(frozen=True, slots=True)
class StartCase:
    """A single job arriving at a fleet of one that is started at t = 0."""

    id: str
    startup: StartUp
    arrival_s: float
    wait_s: float


START_CASES = [
    StartCase("a cold worker takes its first job after the cold start", StartUp(), 0.1, 0.9),
    StartCase(
        "a warm spare takes its first job after the warm start",
        StartUp(spares_per_host=1),
        0.01,
        0.04,
    ),
    StartCase("a job arriving after start-up does not wait", StartUp(), 1.5, 0.0),
]


@pytest.mark.parametrize("case", START_CASES, ids=[c.id for c in START_CASES])
def test_worker_start_up_delays_the_first_job(case: StartCase) -> None:
    config = SimConfig(startup=case.startup, hosts=(("h", 4),))
    run = simulate(one_job_trace(case.arrival_s), StaticScaler(1), service_time(0.1, 0), config)
    assert run.waits_s == [pytest.approx(case.wait_s)]


def test_a_stopped_worker_finishes_its_job_before_it_exits() -> None:
    pool = WorkerPool((("h", 4),), StartUp(cold_s=1.0), seed=1)
    pool.apply({"h": 2}, 0.0)
    pool.busy_until[0] = 8.0  # worker 0 runs a job until t = 8
    pool.apply({"h": 0}, 5.0)
    assert pool.draining(5.0) == 1 and pool.draining(8.0) == 0
    assert all(pool.stopping)
    assert pool.worker_seconds(20.0) == pytest.approx(8.0 + 5.0)


def test_a_shrinking_host_stops_starting_workers_before_busy_ones() -> None:
    pool = WorkerPool((("h", 4),), StartUp(cold_s=1.0), seed=1)
    pool.apply({"h": 1}, 0.0)
    pool.busy_until[0] = 9.0
    pool.apply({"h": 2}, 5.0)  # worker 1 starts at 5, ready at 6
    pool.apply({"h": 1}, 5.5)
    assert pool.stopping == [False, True]


class Recorder:
    """A fixed fleet that remembers what it observed."""

    name = "recorder"
    period_s = 1.0

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.seen: list[tuple[float, Observation]] = []

    def desired(self, observation: Observation, now_s: float) -> int:
        self.seen.append((now_s, observation))
        return self.workers


def test_the_policy_sees_a_wait_one_to_two_seconds_after_the_job_started() -> None:
    recorder = Recorder(1)
    trace = parse_trace("arrival_s\n0.1\n9.5\n", "two")  # the second job only sets the end
    simulate(trace, recorder, service_time(0.1, 0), SimConfig(hosts=(("h", 4),)))
    first_seen = next(t for t, obs in recorder.seen if obs.wait_p99_s is not None)
    job_started_s = 1.0
    assert 1.0 <= first_seen - job_started_s <= 2.0
    p99 = next(obs.wait_p99_s for t, obs in recorder.seen if t == first_seen)
    assert p99 == pytest.approx(0.9, rel=0.05)


def test_head_of_line_age_and_backlog_are_read_live() -> None:
    recorder = Recorder(0)
    trace = parse_trace("arrival_s\n0.5\n0.7\n", "two")
    simulate(trace, recorder, service_time(0.1, 0), SimConfig())
    at_one = next(obs for t, obs in recorder.seen if t == 1.0)
    assert at_one.head_of_line_age_s == pytest.approx(0.5)
    assert at_one.backlog == 2
    assert at_one.wait_p99_s is None and at_one.telemetry_age_s is None


@pytest.mark.parametrize("period_s", [0.3, 0.7, 1.5, 2.5])
def test_the_timeline_has_a_row_every_second_whatever_the_decision_period(
    period_s: float,
) -> None:
    recorder = Recorder(1)
    recorder.period_s = period_s
    trace = parse_trace("t_s,rate_per_s\n0,5\n30,0\n", "flat")
    run = simulate(trace, recorder, service_time(0.1, 0), SimConfig(hosts=(("h", 4),)))
    assert [row.t_s for row in run.timeline] == [float(s) for s in range(1, 31)]
    decided = [t for t, _ in recorder.seen]
    assert decided == pytest.approx([k * period_s for k in range(len(decided))])
    assert decided[-1] <= 30.0 < decided[-1] + period_s, "decide until the end, unrounded"


def previous_ticks(period_s: float, duration_s: float) -> list[tuple[float, bool, bool]]:
    """The engine's ticks before the timeline was made independent of the period."""
    step_s = min(period_s, 1.0)
    every = max(1, round(period_s / step_s))
    found = []
    for tick in range(math.floor(duration_s / step_s) + 1):
        now_s = tick * step_s
        found.append((now_s, tick % every == 0, abs(now_s - round(now_s)) < 1e-9 and now_s > 0))
    return found


@pytest.mark.parametrize("period_s", [1.0, 0.5, 0.25, 0.2, 0.1, 2.0, 15.0])
@pytest.mark.parametrize("duration_s", [3600.0, 3430.0, 1200.5])
def test_a_period_dividing_a_second_or_of_whole_seconds_ticks_as_before(
    period_s: float, duration_s: float
) -> None:
    assert list(ticks(period_s, duration_s)) == previous_ticks(period_s, duration_s)


@pytest.mark.parametrize(
    ("period_s", "says"),
    [(0.0, "must be finite and > 0"), (math.nan, "must be finite"), (1e-7, "at most 1,000,000")],
    ids=["zero", "nan", "a tenth of a microsecond"],
)
def test_a_decision_period_that_is_not_positive_or_too_small_is_refused_at_once(
    period_s: float, says: str
) -> None:
    recorder = Recorder(1)
    recorder.period_s = period_s
    trace = parse_trace("t_s,rate_per_s\n0,5\n1200,0\n", "flat")
    with pytest.raises(ConfigurationError, match=says):
        simulate(trace, recorder, service_time(0.1, 0), SimConfig())
    assert recorder.seen == []


def test_the_leader_reads_the_mean_and_cv_of_run_times_from_complete_windows() -> None:
    telemetry = Telemetry(samples_per_worker_s=200.0)
    for run_s in (0.1, 0.3, 0.1, 0.3):
        telemetry.record_run(3, run_s)
    telemetry.record_run(5, 9.0)  # the window still filling at t = 5.5 is not read
    signals = telemetry.read(5.5, 5, ready_workers=2)
    assert signals.service_s == pytest.approx(0.2)
    assert signals.service_cv == pytest.approx(0.5)  # std 0.1 over mean 0.2
    assert telemetry.read(20.0, 5, ready_workers=2).service_cv is None


def test_sampling_weight_adapts_to_the_per_worker_job_rate() -> None:
    telemetry = Telemetry(samples_per_worker_s=200.0)
    telemetry.adapt(50.0)
    assert telemetry.every == 1
    telemetry.adapt(1000.0)
    assert telemetry.every == 5


def test_a_rate_trace_holds_each_rate_until_the_next_row_and_ends_at_the_last() -> None:
    trace = parse_trace("# service_s=0.3 service_cv=2\nt_s,rate_per_s\n0,10\n5,30\n8,0\n", "x")
    assert (trace.rate_at(4.9), trace.rate_at(5.0), trace.rate_at(8.0)) == (10.0, 30.0, 0.0)
    assert (trace.duration_s, trace.service_s, trace.service_cv) == (8.0, 0.3, 2.0)
    assert trace.increases() == [5.0]


def arrival_trace(rates: list[tuple[float, float]], seed: int = 7) -> Trace:
    """An arrival trace of Poisson arrivals at `rates`: (rate, until_s) pieces in order."""
    rng, t_s, lines = random.Random(seed), 0.0, ["arrival_s"]
    for rate, until_s in rates:
        t_s += rng.expovariate(rate)
        while t_s < until_s:
            lines.append(f"{t_s:.4f}")
            t_s += rng.expovariate(rate)
        t_s = until_s
    return parse_trace("\n".join(lines) + "\n", "arrivals")


def test_a_steady_arrival_trace_has_no_rise_so_no_recovery_time() -> None:
    # Its 1 s counts rise 1.5x by chance every few seconds: it used to report 60 s.
    trace = arrival_trace([(5.0, 600.0)])
    assert trace.increases() == []
    assert run_scenario(trace, "default").summary.recovery_s is None


def test_an_arrival_trace_rises_where_its_rate_steps_up() -> None:
    trace = arrival_trace([(20.0, 200.0), (80.0, 400.0), (20.0, 600.0)])
    rises = trace.increases()
    assert len(rises) == 1 and abs(rises[0] - 200.0) <= 2.0, rises


def test_poisson_arrivals_follow_the_rate() -> None:
    trace = parse_trace("t_s,rate_per_s\n0,100\n100,0\n", "x")
    count = len(trace.arrival_times(random.Random(5)))
    assert abs(count - 10_000) < 4 * math.sqrt(10_000)


@pytest.mark.parametrize(
    "text",
    ["", "t,rate\n0,1\n", "t_s,rate_per_s\n0,1\n", "t_s,rate_per_s\n0,-1\n9,0\n", "arrival_s\nx\n"],
    ids=["empty", "bad header", "no end row", "negative rate", "not a number"],
)
def test_a_bad_trace_is_refused_with_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_trace(text, "bad")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_trace_loads_and_lasts_an_hour_or_less(name: str) -> None:
    trace = load_trace(name)
    assert 0 < trace.duration_s <= 3600 and trace.steps


@dataclass(frozen=True, slots=True)
class HpaCase:
    """The HPA baseline from a current size, given one p99 reading."""

    id: str
    current: int
    p99_s: float | None
    desired: int


HPA_CASES = [
    HpaCase("a ratio within 10 % holds", 10, 0.54, 10),
    HpaCase("a ratio of 1.5 scales up by half", 10, 0.75, 15),
    HpaCase("scale-up is limited to double", 10, 5.0, 20),
    HpaCase("a small fleet may grow by four", 1, 5.0, 5),
    HpaCase("a missing metric holds", 10, None, 10),
    HpaCase("scale-down waits for the 300 s window", 10, 0.05, 10),
]


@pytest.mark.parametrize("case", HPA_CASES, ids=[c.id for c in HPA_CASES])
def test_the_hpa_baseline_follows_the_hpa_defaults(case: HpaCase) -> None:
    hpa = HpaScaler(0.5, 0, 100)
    hpa.hpa.current = case.current
    hpa.hpa.history.append((0.0, case.current))
    assert hpa.desired(Observation(wait_p99_s=case.p99_s), 15.0) == case.desired


def test_the_keda_baseline_asks_one_worker_per_five_jobs_of_backlog() -> None:
    keda = KedaScaler(0, 100)
    keda.hpa.current = 2
    assert keda.desired(Observation(backlog=40), 15.0) == 6  # limited to max(2 + 4, 2 × 2)
    assert keda.desired(Observation(backlog=40), 30.0) == 8


def test_the_celery_baseline_grows_at_once_and_shrinks_after_its_keepalive() -> None:
    celery = CeleryScaler(0, 50)
    assert celery.desired(Observation(backlog=30), 0.0) == 30
    assert celery.desired(Observation(backlog=2), 10.0) == 30
    assert celery.desired(Observation(backlog=2), 31.0) == 2


SURGE = "t_s,rate_per_s\n0,2\n100,300\n160,2\n200,0\n"
"""A quiet start (one worker would do) and a surge needing about 65 workers."""


@pytest.mark.parametrize("policy", POLICIES)
def test_every_scaler_keeps_within_the_policy_min_and_max(policy: str) -> None:
    trace = parse_trace(SURGE, "surge")
    run = run_scenario(trace, policy, policy=sim_policy(min="5", max="30")).run
    sizes = [size for _, size in run.changes] + [row.desired for row in run.timeline]
    assert min(sizes) >= 5 and max(sizes) <= 30, (min(sizes), max(sizes))


@pytest.mark.parametrize("policy", ["keda", "celery"])
def test_the_keda_and_celery_baselines_start_at_min(policy: str) -> None:
    trace = parse_trace(SURGE, "surge")
    run = run_scenario(trace, policy, policy=sim_policy(min="5", max="30")).run
    assert run.changes[0] == (0.0, 5)


def test_oracle_worker_seconds_add_erlang_c_sizes_over_the_steps() -> None:
    trace = parse_trace("t_s,rate_per_s\n0,50\n100,150\n160,0\n", "two-step")
    outcome = run_scenario(trace, "static")
    service = outcome.summary
    expected = 100 * workers_for_wait(50, 0.2, 0.5) + 60 * workers_for_wait(150, 0.2, 0.5)
    assert service.oracle_worker_seconds == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sizes", "count"),
    [([1, 2, 3], 0), ([4, 2, 4], 1), ([3, 3, 5, 4, 4, 6], 2), ([], 0)],
    ids=["monotone", "down then up", "repeats ignored", "none"],
)
def test_reversals_count_changes_of_direction(sizes: list[int], count: int) -> None:
    assert (
        reversals([(float(i), s) for i, s in enumerate(sizes)], start_size=sizes[0] if sizes else 0)
        == count
    )


def test_reversals_are_rated_over_the_span_they_are_counted_in() -> None:
    summary = Summary("default", "x", 1.0, 0.0, 0.0, 0, 19, 0.0, 0.0, None, 0, 1200.0)
    assert per_hour(summary, summary.reversals) == pytest.approx(60.0), "19 in 1140 s"


def test_the_summary_judges_attainment_by_arrival_window() -> None:
    trace = parse_trace("t_s,rate_per_s\n0,20\n200,0\n", "flat")
    run = simulate(trace, StaticScaler(0), service_time(0.1, 0), SimConfig())
    summary = summarise(run, service_time(0.1, 0), 0.5)
    assert summary.slo_attainment == 0.0, "jobs never served must fail every window"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["simulate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_simulate_json_prints_the_documented_summary_fields() -> None:
    code, out, _ = cli("--trace", "step", "--policy", "oracle", "--json")
    fields = json.loads(out)
    assert code == ExitCode.OK
    for name in ("policy", "trace", "slo_attainment", "worker_seconds", "oracle_worker_seconds",
                 "scale_actions", "reversals", "wait_p99_s", "recovery_s", "jobs"):  # fmt: skip
        assert name in fields, name


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--trace", "nope"), "unknown trace 'nope'"),
        (("--trace", "step", "--target-p99", "5xs"), "bad duration '5xs'"),
        (("--trace", "step", "--policy", "magic"), "'magic' is not one of"),
        (("--trace", "step", "--service-cv", "-1"), "service cv -1"),
        (("--trace", "step", "--period", "1e-7"), "--period: decision period 1e-07 s makes"),
        (("--trace", "step", "--period", "0"), "--period: decision period 0 s must be"),
    ],
    ids=[
        "unknown trace",
        "bad duration",
        "unknown policy",
        "negative cv",
        "tiny period",
        "no period",
    ],
)
def test_simulate_refuses_bad_input_with_one_line_and_the_usage_code(
    args: tuple[str, ...], says: str
) -> None:
    code, _, err = cli(*args)
    assert code == ExitCode.USAGE
    assert says in err, err


def test_simulate_plot_without_matplotlib_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = cli("--trace", "step", "--policy", "oracle", "--plot", "x.png")
    assert code == ExitCode.USAGE
    assert "pip install 'fleetscale[plot]'" in err
