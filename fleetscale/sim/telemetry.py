"""What the leader can see of a simulated fleet, modelled on the real telemetry path.

Workers record 1 in N waits (weight N, N adapted each second so a worker records about
`samples_per_worker_s`) into the log-linear `Histogram`, plus run time and completions.
Each worker flushes about once a second at its own phase, into the 1 s window of the
flush's (Redis) time. The leader reads only complete windows, the last
`signal_window_s` of them, so a wait reaches the policy 1–2 s after the job started.
Run times are summed with their squares, so the leader reads their mean and their
coefficient of variation (the real controller gets both from the run-time histogram).
Head-of-line age, backlog and the arrival rate (from `entries-added` samples over
`rate_window_s`) are read live from the stream by the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from fleetscale.histogram import Histogram, merge_all


@dataclass(frozen=True, slots=True)
class Signals:
    """What the leader derives from the telemetry windows; None means unknown.

    Attributes:
        wait_p50_s / wait_p99_s: queue-wait quantiles of the sampled waits, seconds.
        service_s: mean run time of the jobs completed, seconds.
        service_cv: coefficient of variation of those run times (std ÷ mean).
        completed_per_s: jobs completed per second over the windows read.
        busy_fraction: share of the ready workers' time spent running jobs, 0..1.
    """

    wait_p50_s: float | None
    wait_p99_s: float | None
    service_s: float | None
    service_cv: float | None
    busy_fraction: float | None
    completed_per_s: float


class Telemetry:
    """Windowed, sampled worker telemetry; owned by one simulation run."""

    __slots__ = (
        "_done",
        "_oldest",
        "_run_s",
        "_run_sq_s2",
        "_waits",
        "every",
        "samples_per_worker_s",
    )

    def __init__(self, samples_per_worker_s: float) -> None:
        self.samples_per_worker_s = samples_per_worker_s
        self.every = 1
        self._waits: dict[int, Histogram] = {}
        self._run_s: dict[int, float] = {}
        self._run_sq_s2: dict[int, float] = {}
        self._done: dict[int, int] = {}
        self._oldest = 0

    def wait_recorder(self) -> Callable[[int, float], None]:
        """Return `record(window, wait_s)` adding one weighted sample to a window."""
        waits = self._waits

        def record(window: int, wait_s: float) -> None:
            histogram = waits.get(window)
            if histogram is None:
                histogram = waits[window] = Histogram()
            histogram.record(wait_s, self.every)

        return record

    def record_run(self, window: int, run_s: float) -> None:
        """Add one completed job's run time to a window."""
        self._run_s[window] = self._run_s.get(window, 0.0) + run_s
        self._run_sq_s2[window] = self._run_sq_s2.get(window, 0.0) + run_s * run_s
        self._done[window] = self._done.get(window, 0) + 1

    def adapt(self, starts_per_worker_s: float) -> None:
        """Set N so a worker starting this many jobs a second records ~the target rate."""
        self.every = max(1, math.floor(starts_per_worker_s / self.samples_per_worker_s))

    def read(self, now_s: float, window_count: int, ready_workers: int) -> Signals:
        """Return the signals of the last `window_count` complete windows.

        Windows older than the ones read are dropped (they expire in Redis too).
        """
        newest = math.floor(now_s) - 1
        first = newest - window_count + 1
        for window in range(self._oldest, first):
            self._waits.pop(window, None)
            self._run_s.pop(window, None)
            self._run_sq_s2.pop(window, None)
            self._done.pop(window, None)
        self._oldest = max(self._oldest, first)
        windows = range(first, newest + 1)
        merged = merge_all(self._waits[w] for w in windows if w in self._waits)
        done = sum(self._done.get(w, 0) for w in windows)
        run_s = sum(self._run_s.get(w, 0.0) for w in windows)
        run_sq_s2 = sum(self._run_sq_s2.get(w, 0.0) for w in windows)
        service_s = run_s / done if done else None
        cv = None
        if service_s:
            cv = math.sqrt(max(0.0, run_sq_s2 / done / (service_s * service_s) - 1.0))
        busy = min(1.0, run_s / (window_count * ready_workers)) if ready_workers else None
        return Signals(
            merged.quantile(0.5), merged.quantile(0.99), service_s, cv, busy, done / window_count
        )
