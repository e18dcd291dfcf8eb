"""A task app for tests whose tasks record what they do in a ledger file outside Redis.

The fleet name and the ledger path come from the environment, so each test gets its
own: `FLEETSCALE_TEST_FLEET`, `FLEETSCALE_TEST_LEDGER`. A ledger line is
`<kind> <key> <pid> <wall time>`; appends of one short line are atomic.
"""

from __future__ import annotations

import os
import time

from fleetscale.app import App

app = App(os.environ.get("FLEETSCALE_TEST_FLEET", "test"))
LEDGER = os.environ.get("FLEETSCALE_TEST_LEDGER", os.devnull)
# A test that runs this worker under faketime says by how much, so that the ledger
# keeps true time while fleetscale itself sees the skewed clock.
INJECTED_SKEW_S = float(os.environ.get("FLEETSCALE_TEST_SKEW_S", "0"))


def note(kind: str, key: str) -> None:
    true_time = time.time() - INJECTED_SKEW_S
    with open(LEDGER, "a") as ledger:
        ledger.write(f"{kind} {key} {os.getpid()} {true_time:.6f}\n")


@app.task
def record(key: str, sleep_s: float = 0.0) -> None:
    """Note the start, optionally sleep, note the end."""
    note("start", key)
    if sleep_s:
        time.sleep(sleep_s)
    note("done", key)


@app.task
def noop() -> None:
    """Do nothing (throughput)."""


@app.task(max_attempts=2)
def crash(key: str) -> None:
    """Kill the worker process mid-job (a poison job)."""
    note("start", key)
    os._exit(9)


@app.task(max_attempts=1, timeout_s=0.5)
def hang(key: str, seconds: float) -> None:
    """Run past the time limit."""
    note("start", key)
    time.sleep(seconds)
    note("done", key)


@app.task
def chain(key: str) -> None:
    """Submit a follow-up `record(key)` from inside a task (the app's own producer)."""
    record.submit(key)
