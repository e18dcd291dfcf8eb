"""Judge a run: the summary fields of `fleetscale simulate --json` (DESIGN §3).

Waits are exact here (every job, not the sampled telemetry the policy sees), and are
grouped by *arrival* time, so a job still stuck in the queue counts against the window
it arrived in (a job never started by the end waits until the end).

- `slo_attainment`: share of `slo_window_s` (10 s) arrival windows after the first
  `warmup_s` (60 s) whose p99 wait is within the target; windows with no arrival are
  not counted.
- `worker_seconds`: process-seconds of every worker (starting, ready and draining).
- `oracle_worker_seconds`: Σ over the trace's steps of the Erlang-C fewest workers
  for the step's rate × its length: a lower bound no online policy can reach.
- `scale_actions`: changes of the desired size; `reversals`: consecutive changes in
  opposite directions. Both after the warm-up, like attainment: the cold start from an
  empty fleet is not steady behaviour.
- `wait_p99_s`, `wait_mean_s`: over every job arriving after the warm-up.

A trace no longer than the warm-up, or with no load after it, has nothing to score (it
used to score attainment 1 with no job judged): `check_scorable` refuses it before the
run, and `summarise` refuses a run in which no job arrived after the warm-up.
- `recovery_s`: for each rise of the trace's rate by ≥ 1.5× (scored after the warm-up),
  the end of the last 1 s arrival bin within the next 60 s whose p99 wait exceeds the
  target, measured from the rise (0 when none does); the worst one, or None when the
  trace has no such rise. On an arrival trace a rise is one of the 10 s arrival count
  beyond Poisson noise (`Trace.increases`): its 1 s counts rise 1.5× by chance, and a
  steady one reported a 60 s recovery.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from fleetscale.errors import ConfigurationError
from fleetscale.sim.engine import Run
from fleetscale.sim.scaler import oracle_workers
from fleetscale.sim.service import ServiceTime
from fleetscale.sim.trace import Trace

WARMUP_S = 60.0
SLO_WINDOW_S = 10.0
RECOVERY_HORIZON_S = 60.0


@dataclass(frozen=True, slots=True)
class Summary:
    """The judged outcome of one run (field meanings in the module docstring)."""

    policy: str
    trace: str
    slo_attainment: float
    worker_seconds: float
    oracle_worker_seconds: float
    scale_actions: int
    reversals: int
    wait_p99_s: float
    wait_mean_s: float
    recovery_s: float | None
    jobs: int
    duration_s: float

    def to_dict(self) -> dict[str, object]:
        """The JSON object `simulate --json` prints."""
        return asdict(self)


def check_scorable(trace: Trace) -> None:
    """Refuse a trace with no load after the warm-up: none of its arrivals would be
    scored, and an empty score would read as a perfect one.

    Raises:
        ConfigurationError: naming the trace and what it lacks.
    """
    if not trace.duration_s > WARMUP_S:
        raise ConfigurationError(
            f"trace {trace.name!r} lasts {trace.duration_s:g} s: it must last longer than "
            f"the {WARMUP_S:g} s warm-up, after which runs are scored"
        )
    if not _loaded_after_warmup(trace):
        raise _nothing_to_score(trace)


def _loaded_after_warmup(trace: Trace) -> bool:
    # An arrival trace's steps are its 1 s arrival counts: the same test holds for it.
    return any(rate > 0 and end_s > WARMUP_S for _, end_s, rate in trace.segments())


def _nothing_to_score(trace: Trace) -> ConfigurationError:
    return ConfigurationError(
        f"trace {trace.name!r} has no arrivals after the {WARMUP_S:g} s warm-up: "
        "there is nothing to score; give it load after its first minute"
    )


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values by nearest rank (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _window_p99(run: Run, start_s: float, end_s: float) -> float | None:
    lo = bisect.bisect_left(run.arrivals_s, start_s)
    hi = bisect.bisect_left(run.arrivals_s, end_s)
    if hi <= lo:
        return None
    return nearest_rank(sorted(run.waits_s[lo:hi]), 0.99)


def slo_attainment(run: Run, target_s: float) -> float:
    """Share of scored 10 s arrival windows whose p99 wait is within the target."""
    met = counted = 0
    start_s = WARMUP_S
    while start_s < run.trace.duration_s:
        p99 = _window_p99(run, start_s, min(start_s + SLO_WINDOW_S, run.trace.duration_s))
        if p99 is not None:
            counted += 1
            met += p99 <= target_s
        start_s += SLO_WINDOW_S
    return met / counted if counted else 1.0


def recovery_s(run: Run, target_s: float) -> float | None:
    """The worst recovery after a ≥ 1.5× rise in the trace's rate (module docstring)."""
    rises = [t for t in run.trace.increases() if t >= WARMUP_S]
    if not rises:
        return None
    worst = 0.0
    for rise_s in rises:
        end_s = min(rise_s + RECOVERY_HORIZON_S, run.trace.duration_s)
        last = 0.0
        bin_s = rise_s
        while bin_s < end_s:
            p99 = _window_p99(run, bin_s, min(bin_s + 1.0, end_s))
            if p99 is not None and p99 > target_s:
                last = min(bin_s + 1.0, end_s) - rise_s
            bin_s += 1.0
        worst = max(worst, last)
    return worst


def reversals(changes: Sequence[tuple[float, int]], start_size: int = 0) -> int:
    """Count direction changes between consecutive changes of the desired size."""
    count, previous, direction = 0, start_size, 0
    for _, size in changes:
        step = (size > previous) - (size < previous)
        if step and direction and step != direction:
            count += 1
        if step:
            direction = step
        previous = size
    return count


def oracle_worker_seconds(run: Run, service: ServiceTime, target_s: float) -> float:
    """Σ Erlang-C fewest workers × step length over the trace (a lower bound)."""
    sizes: dict[float, int] = {}
    total = 0.0
    for start_s, end_s, rate in run.trace.segments():
        if rate not in sizes:
            sizes[rate] = oracle_workers(rate, service, target_s)
        total += sizes[rate] * (end_s - start_s)
    return total


def summarise(run: Run, service: ServiceTime, target_s: float) -> Summary:
    """Judge a run against the target (see the module docstring).

    Raises:
        ConfigurationError: for a trace `check_scorable` refuses, or a run in which no
            job arrived after the warm-up.
    """
    check_scorable(run.trace)
    first = bisect.bisect_left(run.arrivals_s, WARMUP_S)
    scored = sorted(run.waits_s[first:])
    if not scored:  # a rate so low that no job happened to arrive
        raise _nothing_to_score(run.trace)
    scored_changes = [(t, size) for t, size in run.changes if t >= WARMUP_S]
    start_size = next((size for t, size in reversed(run.changes) if t < WARMUP_S), 0)
    return Summary(
        policy=run.scaler,
        trace=run.trace.name,
        slo_attainment=slo_attainment(run, target_s),
        worker_seconds=run.worker_seconds,
        oracle_worker_seconds=oracle_worker_seconds(run, service, target_s),
        scale_actions=len(scored_changes),
        reversals=reversals(scored_changes, start_size),
        wait_p99_s=nearest_rank(scored, 0.99),
        wait_mean_s=sum(scored) / len(scored),
        recovery_s=recovery_s(run, target_s),
        jobs=len(run.arrivals_s),
        duration_s=run.trace.duration_s,
    )


def per_hour(summary: Summary, count: int) -> float:
    """`count` an hour of the scored span: actions and reversals are counted only after
    the warm-up, so the first minute is not part of the hour either."""
    return count * 3600.0 / (summary.duration_s - WARMUP_S)
