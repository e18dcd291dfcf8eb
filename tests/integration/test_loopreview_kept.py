"""Jobs a worker keeps pending because the dead-letter key has another type: they are
neither run again nor dead-lettered twice, whatever the lease settings."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.process import build_worker
from tests.support.procs import wait_until


def fast_clock(consumer: Consumer) -> None:
    """Make every reading of the consumer's clock a minute on: a reclaim is due at
    every turn."""
    ticks = itertools.count(step=60.0)
    consumer.monotonic = lambda: float(next(ticks))


@pytest.mark.parametrize(
    "reclaimer",
    ["another-worker-lease-renewal-off", "its-own-worker-after-a-pause"],
)
def test_a_kept_job_past_min_idle_is_not_reclaimed_and_run_again_nor_lettered_twice(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys, reclaimer: str
) -> None:
    # Nothing reset the kept entry's idle time (lease renewal off, or the whole process
    # was paused): past min_idle a reclaim took it and ran the job again (its failure
    # was not retriable, so attempts were left), and kept a second letter for it; once
    # the key was fixed, both letters were written.
    app = App(fleet)
    calls: list[int] = []

    @app.task
    def sloppy() -> object:
        calls.append(1)
        return asyncio.sleep(0)  # a coroutine: the job fails, not to be retried

    client.set(keys.dlq, "oops")
    Producer(fleet, redis_settings.url).submit("sloppy")
    settings = WorkerSettings(block_ms=10, min_idle_s=0.05, renew_leases=False)
    parts = build_worker(app, redis_settings, settings)
    fast_clock(parts.consumer)
    parts.consumer.run_once()
    assert calls == [1]
    if reclaimer == "another-worker-lease-renewal-off":
        other = build_worker(app, redis_settings, settings).consumer
        fast_clock(other)
    else:
        other = parts.consumer

    def idle_ms() -> int:
        (entry,) = client.xpending_range(keys.jobs, GROUP, "-", "+", 1)
        return int(entry["time_since_delivered"])

    for _ in range(3):
        wait_until(lambda: idle_ms() >= 100, what="the kept entry to idle past min_idle")
        if reclaimer == "another-worker-lease-renewal-off":
            parts.housekeeper.renew()  # its duty, due
        other.run_once()
    assert calls == [1], "the kept job ran again"
    client.rename(keys.dlq, keys.dlq + ".bad")
    parts.consumer.run_once()
    other.run_once()
    assert DeadLetters(client, keys, redis_settings.url).count() == 1
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0
