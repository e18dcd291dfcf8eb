"""The worker at its edges, against a real Redis: the largest batches it may take, and
tasks that end in ways a plain `except Exception` misses."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.jobstream import DeadLetter, JobStream, Settlement
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.inproc import run_burst
from tests.support.payloads import raw_job


def test_a_settle_of_more_entries_than_lua_can_unpack_acks_them_all(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # --max-batch allows 10 000; no-op jobs finish thousands within one settle period.
    # Lua's unpack() fails past about 8 000 values: that settle failed on every try,
    # and the worker retried it for ever, running nothing more.
    entries = 10_000
    stream = JobStream(client, keys, redis_settings.url)
    stream.ensure_group()
    producer = Producer(fleet, redis_settings.url)
    for _ in range(entries // 1000):
        producer.submit_many([("noop", (), {})] * 1000)
    ids = [d.entry_id for d in stream.fetch("w1", entries, None)]
    *acks, retried, dead = ids
    settlement = Settlement(
        acks=acks,
        retries=[(retried, 60_000, b"job-again")],
        dead=[DeadLetter(dead, b"job", "broken", "", 1, "j", "noop")],
    )
    for check_owner in (True, False):  # the second is a resend: nothing left to do
        assert stream.settle("w1", settlement, check_owner=check_owner) == []
        assert client.xpending(keys.jobs, GROUP)["pending"] == 0
    assert (client.zcard(keys.delayed), client.xlen(keys.dlq)) == (1, 1)


class TaskAbort(BaseException):
    """A task's own BaseException subclass."""


@pytest.mark.parametrize(
    "raised", [SystemExit(3), KeyboardInterrupt(), TaskAbort("stop")], ids=type
)
def test_a_task_raising_a_base_exception_fails_that_job_and_the_worker_goes_on(
    fleet: str,
    redis_settings: RedisSettings,
    client: Client,
    keys: FleetKeys,
    raised: BaseException,
) -> None:
    # It escaped the worker: the jobs finished before it in the batch stayed unacked
    # (to run again), those after it stayed pending under a dead consumer, and the
    # job itself was dead-lettered only much later, without its reason.
    app = App(fleet)
    ran: list[int] = []

    @app.task(max_attempts=1)
    def step(i: int) -> None:
        ran.append(i)
        if i == 2:
            raise raised

    Producer(fleet, redis_settings.url).submit_many([("step", (i,), {}) for i in range(5)])
    settings = WorkerSettings(block_ms=100, prefetch_window_s=60.0)  # one batch for 1-4
    consumer = run_burst(app, redis_settings, settings)
    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert (consumer.stats.done, consumer.stats.dead) == (4, 1)
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0
    (letter,) = DeadLetters(client, keys, redis_settings.url).list()
    assert letter.reason.startswith(type(raised).__name__), letter.reason


async def _touch(ran: list[str]) -> None:
    ran.append("ran")


def _lines(ran: list[str]) -> Iterator[str]:
    ran.append("ran")
    yield "line"


def test_a_task_that_returns_a_coroutine_or_a_generator_is_dead_lettered_not_done(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # A plain function wrapping an async one (or a generator) does none of its work
    # when called; the job was acknowledged as done all the same.
    app = App(fleet)
    ran: list[str] = []

    @app.task
    def returns_coroutine() -> object:
        return _touch(ran)

    @app.task
    def returns_generator() -> object:
        return _lines(ran)

    Producer(fleet, redis_settings.url).submit_many(
        [("returns_coroutine", (), {}), ("returns_generator", (), {})]
    )
    consumer = run_burst(app, redis_settings)
    assert ran == []
    assert (consumer.stats.done, consumer.stats.dead) == (0, 2)
    reasons = sorted(
        letter.reason for letter in DeadLetters(client, keys, redis_settings.url).list()
    )
    assert "returned a coroutine" in reasons[0] and "returned a generator" in reasons[1], reasons


def test_a_builtin_task_given_arguments_of_the_wrong_type_fails_that_job(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # time.sleep("x") raises TypeError, and the worker asks the signature whether the
    # arguments fit; a builtin without one raised ValueError there, which ended the worker.
    app = App(fleet)
    app.task(name="pause", max_attempts=1)(time.sleep)
    ran: list[int] = []

    @app.task
    def after() -> None:
        ran.append(1)

    producer = Producer(fleet, redis_settings.url)
    producer.submit_many([("pause", ("x",), {}), ("after", (), {})])
    consumer = run_burst(app, redis_settings)
    assert (consumer.stats.done, consumer.stats.dead, ran) == (1, 1, [1])
    (letter,) = DeadLetters(client, keys, redis_settings.url).list()
    assert letter.reason.startswith("TypeError"), letter.reason


@pytest.mark.timeout(60)
def test_a_failed_job_that_cannot_be_encoded_for_its_retry_is_dead_lettered(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # A hand-made entry with a bytes keyword name fails the builtin's call; the retry
    # refused to encode it, and that error was taken for a Redis failure: the worker
    # ran the job again and again, never settling it.
    app = App(fleet)
    app.task(name="pause")(time.sleep)
    JobStream(client, keys, redis_settings.url).ensure_group()
    client.xadd(keys.jobs, {JOB_FIELD: raw_job(id="b1", task="pause", kwargs={b"x": 1})})
    consumer = run_burst(app, redis_settings)
    assert (consumer.stats.failed, consumer.stats.dead) == (1, 1)
    (letter,) = DeadLetters(client, keys, redis_settings.url).list()
    assert "not retried" in letter.reason, letter.reason
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0
