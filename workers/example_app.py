"""An example fleetscale task app: the one the compose file, the Dockerfiles and the
docs run. Copy it as the start of your own.

Run a worker for it from this folder:

    fleetscale worker example_app:app

The fleet name comes from `EXAMPLE_FLEET` (default `example`), so one Redis can hold
several copies of the example side by side.
"""

from __future__ import annotations

import hashlib
import os
import random
import time

from fleetscale import App

app = App(os.environ.get("EXAMPLE_FLEET", "example"))


@app.task
def resize(image_id: str, width: int, cost_ms: float = 50.0) -> None:
    """Stand in for I/O-bound work (fetch, resize, upload an image): sleep `cost_ms`.

    Safe to run twice: a real version would write its output under a name made of
    `image_id` and `width`, so a second run overwrites the same object.
    """
    time.sleep(max(cost_ms, 0.0) / 1000)


@app.task(name="report.digest", max_attempts=2, timeout_s=30)
def digest(report_id: str, rounds: int = 20_000) -> str:
    """Stand in for CPU-bound work: hash `report_id` `rounds` times; return the digest.

    A task's return value is not stored: write results where they are needed.
    """
    value = report_id.encode()
    for _ in range(max(rounds, 0)):
        value = hashlib.sha256(value).digest()
    return value.hex()


@app.task(max_attempts=3, timeout_s=10)
def flaky(key: str, failure_rate: float = 0.3) -> None:
    """Fail at random with probability `failure_rate`: shows retries and dead letters.

    Each failure is retried after a backoff (1 s, 2 s, … with jitter) until the third
    attempt fails too; the job then lands in the dead-letter stream with its reason.
    """
    if random.random() < failure_rate:
        raise RuntimeError(f"flaky job {key!r} failed on purpose (failure_rate={failure_rate})")
