"""The demo's load: a built-in trace (a quiet start, a step up, a spike, a step down)
and a producer that follows it with Poisson arrivals."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from fleetscale.errors import RedisCommandError, RedisUnavailable
from fleetscale.producer import Producer
from fleetscale.sim.trace import Trace

log = logging.getLogger("fleetscale.demo")

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
    """Submits `work` jobs following a trace from a thread; remembers every submit.

    Each job's key is its job id, so a submit retried after a Redis error (whose reply
    may have been lost with the job already in) never adds it twice: the jobs due
    during an outage go in late, none is dropped or doubled.
    """

    producer: Producer
    trace: Trace
    seed: int = 1
    submitted: dict[str, float] = field(default_factory=dict)
    """job key → wall time of its first submit attempt (a wait is never understated)."""
    failed_submits: int = 0
    """Submit attempts that Redis trouble made fail (each retried)."""
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
            self._thread = None
            if self.failed_submits:
                log.warning("demo load: %d submit attempts failed on Redis trouble and were "
                            "retried under the same job ids", self.failed_submits)  # fmt: skip

    def rate_now(self) -> float:
        """The trace's rate at this moment, jobs per second."""
        return self.trace.rate_at(time.time() - self.started_wall)

    def _run(self) -> None:
        arrivals = self.trace.arrival_times(random.Random(self.seed))
        start, i = time.monotonic(), 0
        tried_at: float | None = None  # wall time of job i's first attempt
        while i < len(arrivals) and not self._stop.is_set():
            now = time.monotonic() - start
            while i < len(arrivals) and arrivals[i] <= now and not self._stop.is_set():
                tried_at = time.time() if tried_at is None else tried_at
                if not self._submit(f"d{i}"):
                    break  # Redis trouble: this job and the rest of the due ones next tick
                self.submitted[f"d{i}"], tried_at, i = tried_at, None, i + 1
            self._stop.wait(0.01)

    def _submit(self, key: str) -> bool:
        """Submit job `key` under its own id; False when Redis trouble stopped it."""
        try:
            self.producer.submit("work", (key, JOB_S), job_id=key)
        except (RedisUnavailable, RedisCommandError) as exc:  # both pass; retry
            self.failed_submits += 1
            if self.failed_submits == 1:
                log.warning("demo load: a submit failed (%s); retrying", exc)
            return False
        return True
