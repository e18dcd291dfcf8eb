"""Task apps the benchmarks run. The fleet name and the ledger path come from the
environment (`FLEETSCALE_BENCH_FLEET`, `FLEETSCALE_BENCH_LEDGER`)."""

from __future__ import annotations

import os
import time

from fleetscale.app import App

app = App(os.environ.get("FLEETSCALE_BENCH_FLEET", "bench"))
LEDGER = os.environ.get("FLEETSCALE_BENCH_LEDGER", os.devnull)


def _note(key: str) -> None:
    with open(LEDGER, "a") as ledger:
        ledger.write(f"{key} {os.getpid()} {time.time():.6f}\n")


@app.task
def noop() -> None:
    """Nothing: measures the framework's own cost per job."""


@app.task
def sleep(seconds: float) -> None:
    """Sleep, standing in for I/O-bound work."""
    time.sleep(seconds)


@app.task
def timed_sleep(key: str, seconds: float) -> None:
    """Note the start (key, pid, wall time) outside Redis, then sleep."""
    _note(key)
    time.sleep(seconds)
