"""Task apps the benchmarks run (the fleet name comes from the environment)."""

from __future__ import annotations

import os
import time

from fleetscale.app import App

app = App(os.environ.get("FLEETSCALE_BENCH_FLEET", "bench"))


@app.task
def noop() -> None:
    """Nothing: measures the framework's own cost per job."""


@app.task
def sleep(seconds: float) -> None:
    """Sleep, standing in for I/O-bound work."""
    time.sleep(seconds)
