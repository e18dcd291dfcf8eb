"""The consumer loop when Redis lost the consumer group (restarted without persistence,
flushed, failed over) while workers ran."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pytest

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.errors import FleetscaleError
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from fleetscale.worker.consumer import Consumer
from fleetscale.worker.process import build_worker


def recording_worker(
    fleet: str, redis_settings: RedisSettings
) -> tuple[Producer, Consumer, list[int]]:
    """A producer, an in-process consumer of task `work(i)`, and the `i`s it ran."""
    app = App(fleet)
    ran: list[int] = []

    @app.task
    def work(i: int) -> None:
        ran.append(i)

    consumer = build_worker(app, redis_settings, WorkerSettings(block_ms=100)).consumer
    return Producer(fleet, redis_settings.url), consumer, ran


def run_until(consumer: Consumer, done: Callable[[], bool]) -> list[str]:
    """Up to 5 turns of what `run` does, without its pauses; the errors they raised."""
    errors = []
    for _ in range(5):
        try:
            consumer.run_once()
        except FleetscaleError as exc:
            errors.append(str(exc))
        if done():
            break
    return errors


def test_a_worker_whose_reclaim_finds_the_group_gone_creates_it_again_and_runs_new_jobs(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # A reclaim comes before the fetch whenever one is due (after an outage longer than
    # the reclaim period, always): its NOGROUP error ended the turn before the fetch
    # that creates the group again, so the worker retried it for ever and ran nothing.
    producer, consumer, ran = recording_worker(fleet, redis_settings)
    ticks = itertools.count(step=60.0)  # a minute a reading: a reclaim is due every turn
    consumer.monotonic = lambda: float(next(ticks))
    producer.submit("work", (1,))
    consumer.run_once()
    assert ran == [1]
    client.delete(keys.jobs)  # the data loss: the stream goes, its group with it
    producer.submit("work", (2,))  # makes the stream again, without the group
    errors = run_until(consumer, lambda: ran == [1, 2])
    assert ran == [1, 2], f"the job submitted after the loss never ran: {errors}"


def test_a_worker_resuming_a_batch_after_the_group_was_lost_drops_it_and_runs_new_jobs(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # A batch a Redis error interrupted is checked still ours before it resumes; with
    # the group gone that check failed with NOGROUP every turn, before the fetch that
    # creates the group again, so the worker ran nothing more.
    producer, consumer, ran = recording_worker(fleet, redis_settings)
    producer.submit_many([("work", (1,), {}), ("work", (2,), {})])
    batch = consumer.stream.fetch(consumer.worker_id, 2, None)
    consumer.held.update(d.entry_id for d in batch)  # a batch a Redis error cut off
    consumer._unstarted = batch
    client.delete(keys.jobs)  # the data loss: the stream goes, its group with it
    producer.submit("work", (3,))  # makes the stream again, without the group
    errors = run_until(consumer, lambda: bool(ran))
    assert ran == [3], f"the job submitted after the loss never ran: {errors}"


def test_a_worker_exiting_after_the_group_was_lost_says_so_in_one_line_and_unregisters(
    fleet: str,
    redis_settings: RedisSettings,
    client: Client,
    keys: FleetKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # retire.lua's XPENDING failed with NOGROUP, so the exit logged "retire failed:
    # … refused a command: NOGROUP … script: <sha>, on @user_script:9".
    app = App(fleet)
    parts = build_worker(app, redis_settings, WorkerSettings(block_ms=100))
    worker_id = parts.consumer.worker_id
    parts.housekeeper.heartbeat()
    assert client.zscore(keys.workers, worker_id) is not None
    client.delete(keys.jobs)  # the data loss: the stream goes, its group with it
    Producer(fleet, redis_settings.url).submit("work", (1,))  # the stream, no group
    with caplog.at_level(logging.WARNING, logger="fleetscale.worker"):
        parts.housekeeper.retire()
    assert client.zscore(keys.workers, worker_id) is None, "still registered"
    (line,) = [r.getMessage() for r in caplog.records]
    assert "consumer group is gone" in line and "NOGROUP" not in line, line
