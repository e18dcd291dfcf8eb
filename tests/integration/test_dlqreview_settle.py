"""A dead-letter key someone wrote with another type (a string): workers neither stall
nor lose the jobs they could not dead-letter, and say which key to fix."""

from __future__ import annotations

import logging

import pytest

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.jobstream import DeadLetter, DeadLetterKeyWrongType, JobStream, Settlement
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.inproc import worker_thread
from tests.support.procs import wait_until


def test_a_settle_with_a_dead_letter_for_a_string_dlq_key_writes_nothing_and_names_the_key(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # The XADD of the letter failed half-way through the script: the retry before it
    # was scheduled, no ack was sent, and the worker resent that settle for ever.
    stream = JobStream(client, keys, redis_settings.url)
    stream.ensure_group()
    Producer(fleet, redis_settings.url).submit_many([("a", (), {}), ("b", (), {})])
    retry_id, dead_id = (d.entry_id for d in stream.fetch("w1", 2, None))
    client.set(keys.dlq, "oops")
    settlement = Settlement(
        retries=[(retry_id, 60_000, b"job-a-again")],
        dead=[DeadLetter(dead_id, b"job-b", "broken", "", 3, "b", "b")],
    )
    with pytest.raises(DeadLetterKeyWrongType, match=r"holds a string.*RENAME"):
        stream.settle("w1", settlement, check_owner=True)
    assert client.zcard(keys.delayed) == 0, "no retry scheduled by the refused settle"
    assert client.xpending(keys.jobs, GROUP)["pending"] == 2


@pytest.mark.timeout(60)
def test_a_worker_facing_a_string_dlq_key_runs_the_other_jobs_and_keeps_the_failed_one(
    fleet: str,
    redis_settings: RedisSettings,
    client: Client,
    keys: FleetKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(fleet)
    ran: list[int] = []

    @app.task(max_attempts=1)
    def boom() -> None:
        raise RuntimeError("boom")

    @app.task
    def work(i: int) -> None:
        ran.append(i)

    client.set(keys.dlq, "oops")
    producer = Producer(fleet, redis_settings.url)
    letters = DeadLetters(client, keys, redis_settings.url)
    with caplog.at_level(logging.ERROR), worker_thread(app, redis_settings, WorkerSettings()):
        producer.submit("boom")
        producer.submit_many([("work", (i,), {}) for i in range(5)])
        wait_until(lambda: len(ran) == 5, timeout_s=20, what="the other jobs to run")
        # Their acks go with the batch's settle, after the last of them has run.
        wait_until(lambda: client.xpending(keys.jobs, GROUP)["pending"] == 1,
                   what="the other jobs acked and the failed one kept")  # fmt: skip
        client.rename(keys.dlq, keys.dlq + ".bad")
        wait_until(lambda: client.exists(keys.dlq) and letters.count() == 1, what="its letter")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"{keys.dlq} holds a string" in errors[0]
    (letter,) = letters.list()
    assert letter.reason == "RuntimeError: boom"
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0
