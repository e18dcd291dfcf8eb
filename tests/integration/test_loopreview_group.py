"""The consumer loop when Redis lost the consumer group (restarted without persistence,
flushed, failed over) while workers ran."""

from __future__ import annotations

import itertools

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.errors import FleetscaleError
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from fleetscale.worker.process import build_worker


def test_a_worker_whose_reclaim_finds_the_group_gone_creates_it_again_and_runs_new_jobs(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # A reclaim comes before the fetch whenever one is due (after an outage longer than
    # the reclaim period, always): its NOGROUP error ended the turn before the fetch
    # that creates the group again, so the worker retried it for ever and ran nothing.
    app = App(fleet)
    ran: list[int] = []

    @app.task
    def work(i: int) -> None:
        ran.append(i)

    producer = Producer(fleet, redis_settings.url)
    consumer = build_worker(app, redis_settings, WorkerSettings(block_ms=100)).consumer
    ticks = itertools.count(step=60.0)  # a minute a reading: a reclaim is due every turn
    consumer.monotonic = lambda: float(next(ticks))
    producer.submit("work", (1,))
    consumer.run_once()
    assert ran == [1]
    client.delete(keys.jobs)  # the data loss: the stream goes, its group with it
    producer.submit("work", (2,))  # makes the stream again, without the group
    errors = []
    for _ in range(5):  # what `run` does, without its pauses
        try:
            consumer.run_once()
        except FleetscaleError as exc:
            errors.append(str(exc))
        if ran == [1, 2]:
            break
    assert ran == [1, 2], f"the job submitted after the loss never ran: {errors}"
