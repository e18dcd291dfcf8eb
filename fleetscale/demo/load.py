"""The demo's load: a built-in trace (a quiet start, a step up, a spike, a step down)
and a producer that follows it with Poisson arrivals."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from fleetscale.producer import Producer
from fleetscale.sim.trace import Trace

JOB_S = 0.1
"""Run time of a demo job, seconds."""

# (share of the duration, jobs per second): quiet, step up, spike, step up again, down.
PHASES = ((0.0, 5.0), (0.2, 40.0), (0.45, 120.0), (0.55, 40.0), (0.7, 5.0))


def demo_trace(duration_s: float) -> Trace:
    """The built-in demo trace, stretched to `duration_s` seconds."""
    steps = tuple((share * duration_s, rate) for share, rate in PHASES)
    return Trace("demo", steps, duration_s, service_s=JOB_S, service_cv=0.0)


@dataclass
class Load:
    """Submits `work` jobs following a trace from a thread; remembers every submit."""

    producer: Producer
    trace: Trace
    seed: int = 1
    submitted: dict[str, float] = field(default_factory=dict)
    """job key → wall time of its submit."""
    started_wall: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin following the trace now."""
        self._thread = threading.Thread(target=self._run, name="fleetscale-demo-load", daemon=True)
        self.started_wall = time.time()
        self._thread.start()

    def stop(self) -> None:
        """Stop submitting (what was submitted stays queued)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def rate_now(self) -> float:
        """The trace's rate at this moment, jobs per second."""
        return self.trace.rate_at(time.time() - self.started_wall)

    def _run(self) -> None:
        arrivals = self.trace.arrival_times(random.Random(self.seed))
        start, i = time.monotonic(), 0
        while i < len(arrivals) and not self._stop.is_set():
            now = time.monotonic() - start
            due = 0
            while i + due < len(arrivals) and arrivals[i + due] <= now:
                due += 1
            if due:
                keys = [f"d{i + n}" for n in range(due)]
                wall = time.time()
                self.producer.submit_many([("work", (k, JOB_S), {}) for k in keys])
                self.submitted.update(dict.fromkeys(keys, wall))
                i += due
            self._stop.wait(0.01)
