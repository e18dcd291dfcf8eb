"""The discrete-event core: one FIFO stream, a fleet of workers, a scaler, a clock.

Jobs are served in arrival order by whichever worker frees first (a heap of worker free
times), which is exactly FIFO dispatch from a Redis consumer group with prefetch 1. The
engine ticks at every decision time (k × `period_s`, shifted by `decision_phase_s`; see
`ticks`) and at every whole second: before
each tick it starts every job that can start by then, so what the scaler observes at a
tick is the state at that instant; at a decision time the scaler decides and the pool
converges to the new quotas; at a whole second the timeline gets its row. A decision
time within a nanosecond of a whole second is one tick. Jobs that cannot start before
the next tick wait for it, because the fleet may change. The timeline has one row per
second whatever the period (a period of 0.3 s used to leave rows only where a decision
fell on a whole second, and 1.5 s was rounded to 2 s).

Deterministic for a seed: arrivals, run times and worker flush phases come from
separate seeded generators.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from fleetscale.controller.policy import Observation
from fleetscale.controller.quota import assign_quotas
from fleetscale.errors import ConfigurationError
from fleetscale.sim.pool import StartUp, WorkerPool
from fleetscale.sim.service import ServiceTime
from fleetscale.sim.telemetry import Telemetry
from fleetscale.sim.trace import Trace

DEFAULT_HOSTS = tuple((f"host-{i}", 64) for i in range(8))
"""Eight hosts of 64 workers each."""
DEFAULT_CAPACITY = sum(capacity for _, capacity in DEFAULT_HOSTS)
"""The most workers the default hosts run (512)."""

MAX_DECISIONS = 1_000_000
"""The most decisions one run may take (trace length ÷ period): a tiny period fails at
once instead of running for hours."""

_SAME_TICK_S = 1e-9


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How a simulation runs.

    Attributes:
        target_p99_s: the wait target the run is judged against, seconds.
        period_s: the default policy's decision period, seconds (baselines keep theirs).
        startup: worker start-up model.
        hosts: (host, capacity) of every host.
        seed: seeds arrivals, run times and flush phases.
        signal_window_s: complete 1 s telemetry windows merged for wait quantiles.
        rate_window_s: span of the `entries-added` samples behind the arrival rate, s.
        samples_per_worker_s: the sampled waits each worker aims to record per second.
        decision_phase_s: where the decision ticks fall within a period, seconds in
            [0, the scaler's period): after the decision at 0 they fall at
            phase + k × period. A real controller started before the load ticks at some
            phase of the trace's clock; a step in the load is met up to a period sooner
            or later depending on it (`bench.control` passes the phase it measured).
    """

    target_p99_s: float = 0.5
    period_s: float = 1.0
    startup: StartUp = field(default_factory=StartUp)
    hosts: tuple[tuple[str, int], ...] = DEFAULT_HOSTS
    seed: int = 1
    signal_window_s: int = 5
    rate_window_s: float = 2.0
    samples_per_worker_s: float = 200.0
    decision_phase_s: float = 0.0


class Scaler(Protocol):
    """A scaling policy under test: reads an observation, returns a fleet size."""

    name: str
    period_s: float

    def desired(self, observation: Observation, now_s: float) -> int:
        """Return the fleet size wanted at `now_s`, workers."""
        ...


@dataclass(frozen=True, slots=True)
class Second:
    """One row of the per-second timeline (state at the end of second `t_s`)."""

    t_s: float
    rate_per_s: float
    arrivals: int
    desired: int
    ready: int
    starting: int
    draining: int
    backlog: int
    observed_p99_s: float | None


@dataclass(slots=True)
class Run:
    """The raw outcome of one simulation, summarised by `fleetscale.sim.report`."""

    trace: Trace
    scaler: str
    arrivals_s: list[float]
    waits_s: list[float]
    timeline: list[Second]
    changes: list[tuple[float, int]]
    worker_seconds: float


class _Engine:
    """The state of one run; `simulate` drives it."""

    def __init__(self, trace: Trace, service: ServiceTime, config: SimConfig) -> None:
        seed = config.seed
        self.config = config
        self.arrivals = trace.arrival_times(random.Random(f"{seed}:arrivals"))
        draw = service.draw(random.Random(f"{seed}:service"))
        self.services = [draw() for _ in self.arrivals]
        self.waits = [math.nan] * len(self.arrivals)
        self.pool = WorkerPool(config.hosts, config.startup, seed)
        self.telemetry = Telemetry(config.samples_per_worker_s)
        self.record_wait = self.telemetry.wait_recorder()
        self.inflight: list[float] = []
        self.next_job = 0
        self.counter = 0
        self.started = 0
        self.last_live_s: float | None = None
        self.quotas: dict[str, int] = {}

    def serve(self, until_s: float) -> None:
        """Start, in arrival order, every job that can start by `until_s`."""
        arrivals, services, waits = self.arrivals, self.services, self.waits
        pool = self.pool
        heap, stopping, busy_until, phase = pool.heap, pool.stopping, pool.busy_until, pool.phase
        inflight, record_wait = self.inflight, self.record_wait
        record_run, every = self.telemetry.record_run, self.telemetry.every
        job, count, counter = self.next_job, len(arrivals), self.counter
        while job < count:
            arrival = arrivals[job]
            if arrival > until_s:
                break
            while heap and stopping[heap[0][1]]:
                heapq.heappop(heap)
            if not heap or max(arrival, heap[0][0]) > until_s:
                break
            free_s, worker = heap[0]
            start_s = arrival if arrival > free_s else free_s
            finish_s = start_s + services[job]
            heapq.heapreplace(heap, (finish_s, worker))
            busy_until[worker] = finish_s
            heapq.heappush(inflight, finish_s)
            waits[job] = start_s - arrival
            counter += 1
            if counter >= every:
                counter = 0
                record_wait(int(start_s + phase[worker]), start_s - arrival)
            record_run(int(finish_s + phase[worker]), services[job])
            job += 1
        self.started += job - self.next_job
        self.next_job, self.counter = job, counter

    def observe(self, now_s: float) -> Observation:
        """What the leader reads at `now_s` (see `fleetscale.sim.telemetry`)."""
        config, arrivals = self.config, self.arrivals
        arrived = bisect.bisect_right(arrivals, now_s)
        while self.inflight and self.inflight[0] <= now_s:
            heapq.heappop(self.inflight)
        waiting = arrived - self.next_job
        span_s = min(config.rate_window_s, now_s)
        rate = None
        if span_s > 0:
            rate = (arrived - bisect.bisect_right(arrivals, now_s - span_s)) / span_s
        views = self.pool.views(now_s)
        ready = sum(view.ready for view in views)
        signals = self.telemetry.read(now_s, config.signal_window_s, ready)
        if self.pool.live_count():
            self.last_live_s = now_s
        age_s = None
        if self.last_live_s is not None:
            age_s = max(now_s - math.floor(now_s), now_s - self.last_live_s)
        return Observation(
            wait_p50_s=signals.wait_p50_s,
            wait_p99_s=signals.wait_p99_s,
            head_of_line_age_s=now_s - arrivals[self.next_job] if waiting > 0 else 0.0,
            backlog=waiting + len(self.inflight),
            arrival_rate_per_s=rate,
            service_time_s=signals.service_s,
            service_cv=signals.service_cv,
            completed_per_s=signals.completed_per_s,
            busy_fraction=signals.busy_fraction,
            telemetry_age_s=age_s,
            hosts=views,
        )

    def act(self, desired: int, now_s: float) -> None:
        """Split `desired` into host quotas and let the pool converge to them."""
        capacities = dict(self.config.hosts)
        self.quotas = assign_quotas(desired, capacities, self.quotas)
        self.pool.apply(self.quotas, now_s)

    def finish(self, end_s: float) -> None:
        """Serve what is left with the final fleet; jobs never started wait until `end_s`."""
        self.serve(math.inf)
        for job in range(self.next_job, len(self.arrivals)):
            self.waits[job] = max(0.0, end_s - self.arrivals[job])


def check_period(period_s: float, duration_s: float) -> None:
    """Refuse a decision period that is not finite and > 0, or too small for the trace.

    Raises:
        ConfigurationError: naming the period and, for too many decisions, the limit.
    """
    if not (math.isfinite(period_s) and period_s > 0):
        raise ConfigurationError(f"decision period {period_s:g} s must be finite and > 0, e.g. 1s")
    if duration_s / period_s > MAX_DECISIONS:
        raise ConfigurationError(
            f"decision period {period_s:g} s makes {duration_s / period_s:.3g} decisions over "
            f"the trace's {duration_s:g} s: at most {MAX_DECISIONS:,}; use a longer period"
        )


def check_phase(phase_s: float, period_s: float) -> None:
    """Refuse a decision phase outside [0, `period_s`), seconds.

    Raises:
        ConfigurationError: naming the phase and the period.
    """
    if not (math.isfinite(phase_s) and 0 <= phase_s < period_s):
        raise ConfigurationError(
            f"decision phase {phase_s:g} s must be ≥ 0 and below the period, {period_s:g} s"
        )


def ticks(
    period_s: float, duration_s: float, phase_s: float = 0.0
) -> Iterator[tuple[float, bool, bool]]:
    """Yield (now_s, decides, whole_second) in time order (see the module docstring).

    Decision times are `phase_s` + k × `period_s` up to `duration_s`, whole seconds
    1 … ⌊duration⌋. With a phase > 0 a decision at 0 comes first: it sets the fleet the
    trace starts with, as a controller already running would have. A decision time within
    a nanosecond of a whole second is one tick at the decision's time, which keeps runs
    at a period dividing 1 s or a whole number of seconds as they were before the
    timeline was made independent of the period.
    """
    first = 1 if phase_s > 0 else 0  # the extra decision at 0
    last_decision = first + math.floor((duration_s - phase_s) / period_s)
    last_second = math.floor(duration_s)
    decision, second = 0, 1
    while decision <= last_decision or second <= last_second:
        decision_s = math.inf
        if decision <= last_decision:
            decision_s = 0.0 if decision < first else phase_s + (decision - first) * period_s
        if second <= last_second and second < decision_s - _SAME_TICK_S:
            yield float(second), False, True
            second += 1
            continue
        whole = second <= last_second and abs(decision_s - second) < _SAME_TICK_S
        yield decision_s, True, whole
        decision += 1
        if whole:
            second += 1


def simulate(trace: Trace, scaler: Scaler, service: ServiceTime, config: SimConfig) -> Run:
    """Replay `trace` against `scaler`; return the raw run (see `report.summarise`).

    Raises:
        ConfigurationError: for a scaler period `check_period` refuses, or a decision
            phase `check_phase` refuses.
    """
    check_period(scaler.period_s, trace.duration_s)
    check_phase(config.decision_phase_s, scaler.period_s)
    engine = _Engine(trace, service, config)
    timeline: list[Second] = []
    changes: list[tuple[float, int]] = []
    desired, observed_p99, last_second_started = 0, None, 0
    phase_s = config.decision_phase_s
    for now_s, decides, whole_second in ticks(scaler.period_s, trace.duration_s, phase_s):
        engine.serve(now_s)
        if decides:
            observation = engine.observe(now_s)
            observed_p99 = observation.wait_p99_s
            wanted = scaler.desired(observation, now_s)
            if wanted != desired:
                changes.append((now_s, wanted))
            desired = wanted
            engine.act(desired, now_s)
        if whole_second:
            ready = sum(view.ready for view in engine.pool.views(now_s))
            engine.telemetry.adapt((engine.started - last_second_started) / max(1, ready))
            last_second_started = engine.started
            timeline.append(_second(engine, trace, now_s, desired, observed_p99))
    engine.finish(trace.duration_s)
    worker_seconds = engine.pool.worker_seconds(trace.duration_s)
    return Run(
        trace,
        scaler.name,
        engine.arrivals,
        engine.waits,
        timeline,
        changes,
        worker_seconds,
    )


def _second(
    engine: _Engine, trace: Trace, now_s: float, desired: int, observed_p99: float | None
) -> Second:
    views = engine.pool.views(now_s)
    arrivals = engine.arrivals
    arrived = bisect.bisect_right(arrivals, now_s)
    return Second(
        t_s=now_s,
        rate_per_s=trace.rate_at(now_s - 1.0),
        arrivals=arrived - bisect.bisect_right(arrivals, now_s - 1.0),
        desired=desired,
        ready=sum(view.ready for view in views),
        starting=sum(view.starting for view in views),
        draining=engine.pool.draining(now_s),
        backlog=arrived - engine.next_job + len(engine.inflight),
        observed_p99_s=observed_p99,
    )
