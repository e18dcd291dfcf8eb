"""`fleetscale worker` in slow motion, counting its fetches: `bench.telemetry_cost`'s worker.

Usage: `python bench/slow_worker.py FACTOR COUNTS_FILE WORKER_ARGS...` runs
`fleetscale worker WORKER_ARGS...` with every period the worker keeps by the clock
multiplied by FACTOR, and writes what its fetches took to COUNTS_FILE (JSON) at exit.

Why: under valgrind the worker runs ~50 times slower, but its periodic work follows the
wall clock, so per job it flushes telemetry, heartbeats, promotes, reclaims and settles
mid-batch ~50 times as often as natively. With FACTOR set to the measured slowdown a
run under valgrind does per job what a native run does (`bench/RESULTS.md`). FACTOR 1
leaves the worker as it is (the raw measurement), counters included.

Scaled: the `WorkerSettings` fields in seconds (the flush, heartbeat, reclaim and lease
periods, `min_idle_s` with them, the prefetch window, retry backoff) and the worker's
module-level periods (`*_EVERY_S` in `fleetscale.worker.consumer` and
`fleetscale.worker.housekeeper`: the mid-batch settle, the sampler's retune, the
watchdog, delayed-job promotion, clock calibration, the parent check). `block_ms` is
not: a blocked read waits without running anything. Nothing of fleetscale is changed
outside this process; it only sets settings and module constants before the worker
starts. The counters are a wrapper around `JobStream.fetch` (a few hundred calls a run,
in both modes alike).

Run by path, not with `-m`: `bench.telemetry_cost` can measure another checkout, whose
`bench` package need not have this file.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import sys
import time
from typing import Any

from fleetscale.cli import main
from fleetscale.cli import worker as worker_cli
from fleetscale.config import WorkerSettings
from fleetscale.jobstream import JobStream
from fleetscale.worker import consumer, housekeeper


def slowed(settings: WorkerSettings, factor: float) -> WorkerSettings:
    """`settings` with every period in seconds multiplied by `factor`."""
    scaled: dict[str, Any] = {
        f.name: getattr(settings, f.name) * factor
        for f in dataclasses.fields(settings)
        if f.name.endswith("_s")
    }
    # Derived periods: the reclaim period is capped at 5 s whatever min_idle_s is.
    scaled["reclaim_every_s"] = settings.reclaim_period_s * factor
    scaled["lease_renew_s"] = settings.renew_every_s * factor
    return dataclasses.replace(settings, **scaled).validate()


def slow_down(factor: float) -> None:
    """Multiply the worker's module-level periods by `factor` (before it starts)."""
    for module in (consumer, housekeeper):
        for name in dir(module):
            if name.endswith("_EVERY_S"):
                setattr(module, name, getattr(module, name) * factor)
    run_worker = getattr(worker_cli, "run_worker")  # noqa: B009 - imported there, not exported

    def run_slowed(app: Any, redis: Any, settings: WorkerSettings, **kwargs: Any) -> Any:
        return run_worker(app, redis, slowed(settings, factor), **kwargs)

    setattr(worker_cli, "run_worker", run_slowed)  # noqa: B010


def count_fetches(path: str) -> None:
    """Record the size of every non-empty fetch and when the first and last returned
    (monotonic seconds); write them to `path` as JSON at exit."""
    batches: list[int] = []
    stamps: list[float] = []
    fetch = JobStream.fetch

    def counted(self: JobStream, *args: Any, **kwargs: Any) -> Any:
        deliveries = fetch(self, *args, **kwargs)
        if deliveries:
            batches.append(len(deliveries))
            stamps.append(time.monotonic())
        return deliveries

    JobStream.fetch = counted  # type: ignore[method-assign]

    def write() -> None:
        first, last = (stamps[0], stamps[-1]) if stamps else (0.0, 0.0)
        with open(path, "w") as out:
            json.dump({"batches": batches, "first_s": first, "last_s": last}, out)

    atexit.register(write)


if __name__ == "__main__":
    factor, counts_path, *worker_args = sys.argv[1:]
    if float(factor) != 1.0:
        slow_down(float(factor))
    count_fetches(counts_path)
    main(["worker", *worker_args], prog_name="fleetscale")
