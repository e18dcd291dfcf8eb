"""A worker that exits because a job ignored its time limit (the watchdog's hard exit)
first acknowledges the jobs it had finished: left pending, they ran again elsewhere."""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from fleetscale.app import App
from fleetscale.codec import decode_job
from fleetscale.config import RedisSettings
from fleetscale.exitcode import ExitCode
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.procs import Processes

# The worker process imports this module as its app (module:attribute).
app = App(os.environ.get("FLEETSCALE_TEST_FLEET", "test"))


@app.task
def quick() -> None:
    """Return at once."""


@app.task(max_attempts=1, timeout_s=0.2)
def stubborn() -> None:
    """Swallow the JobTimeout, as a task stuck in a C call would ignore it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(BaseException):
            time.sleep(0.05)


@pytest.mark.timeout(90)
def test_a_worker_exiting_past_a_jobs_hard_time_limit_acks_the_jobs_it_finished_first(
    procs: Processes, fleet: str, redis_settings: RedisSettings, client: Client,
    keys: FleetKeys,
) -> None:  # fmt: skip
    # The finished job's ack waits up to SETTLE_EVERY_S for its batch; the stuck job
    # came next in the batch, and the exit left the finished one pending: reclaimed,
    # it ran again.
    producer = Producer(fleet, redis_settings.url)
    producer.submit("quick")  # the first fetch takes one job; it measures the run time
    producer.submit_many([("quick", (), {}), ("stubborn", (), {})])  # then one batch
    worker = procs.fleetscale(
        "worker", f"{__name__}:app", "--prefetch-window", "10s", "--min-idle", "60s",
        "--no-telemetry", env={"FLEETSCALE_TEST_FLEET": fleet,
                               "FLEETSCALE_REDIS_URL": redis_settings.url},
    )  # fmt: skip
    assert worker.wait(timeout_s=60) == ExitCode.FAILURE, worker.output()
    assert "ignored its 0.2s time limit" in worker.output()
    pending = client.xpending_range(keys.jobs, GROUP, "-", "+", 10)
    entries = [client.xrange(keys.jobs, p["message_id"], p["message_id"])[0] for p in pending]
    tasks = [decode_job(fields, 2**20).task for _, fields in entries]
    assert tasks == ["stubborn"], "a job the worker had finished is left to run again"
