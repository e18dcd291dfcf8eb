"""The public API against a real Redis: a closed producer, delays of every kind."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from fleetscale import App, Producer
from fleetscale.config import RedisSettings
from fleetscale.errors import SubmitError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client


@pytest.fixture
def producer(fleet: str, redis_settings: RedisSettings) -> Producer:
    return Producer(fleet, redis_settings.url)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.submit("t"),
        lambda p: p.submit("t", job_id="j-1"),
        lambda p: p.submit_many([("t", (), {})] * 2),
        lambda p: p.backlog(),
    ],
    ids=["submit", "submit-with-id", "submit_many", "backlog"],
)
def test_a_closed_producer_refuses_to_submit_instead_of_reconnecting(
    producer: Producer, client: Client, keys: FleetKeys, call: Callable[[Producer], object]
) -> None:
    """redis-py reconnects a closed client on its next command: the job went in and
    the connection `close` released was open again."""
    with producer as open_one:
        open_one.submit("t")
    with pytest.raises(SubmitError, match="closed; create a new Producer"):
        call(producer)
    assert client.xlen(keys.jobs) == 1
    producer.close()  # a second close does nothing


def test_an_app_whose_producer_was_closed_submits_through_a_new_one(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet, redis_url=redis_settings.url)

    @app.task
    def resize(image_id: str, width: int) -> None: ...

    resize.submit("img-1", width=64)
    app.producer().close()
    resize.submit("img-2", width=128)
    assert client.xlen(keys.jobs) == 2


@pytest.mark.parametrize(
    "delay_s",
    [10**400, "5", None, True, -0.5, float("nan"), 1e306],
    ids=["int-past-float", "str", "None", "True", "negative", "nan", "inf-ms"],
)
def test_a_delay_that_is_no_finite_number_of_seconds_is_refused_naming_it(
    producer: Producer, client: Client, keys: FleetKeys, delay_s: object
) -> None:
    """An int past a float's range raised OverflowError, a string or None TypeError,
    and True delayed the job by a second."""
    with pytest.raises(SubmitError, match=r"bad delay_s=.*finite number of seconds ≥ 0"):
        producer.submit("t", delay_s=delay_s)  # type: ignore[arg-type]
    assert client.zcard(keys.delayed) == 0
    assert client.xlen(keys.jobs) == 0


@pytest.mark.parametrize(("delay_s", "delayed"), [(0, 0), (0.0, 0), (2, 1), (1e300, 1)])
def test_a_delay_of_zero_adds_the_job_now_and_any_finite_one_delays_it(
    producer: Producer, client: Client, keys: FleetKeys, delay_s: float, delayed: int
) -> None:
    producer.submit("t", delay_s=delay_s, job_id="once")
    assert (client.xlen(keys.jobs), client.zcard(keys.delayed)) == (1 - delayed, delayed)


def test_a_job_resubmitted_with_its_keyword_arguments_in_another_order_is_the_same_job(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    """The dedup digest covered the payload's bytes, kwargs in call order: a retry
    written `send(body=…, to=…)` was refused as a different job."""
    app = App(fleet, redis_url=redis_settings.url)

    @app.task(name="mail.send")
    def send(to: str, body: str) -> None: ...

    first = send.submit_with(kwargs={"to": "a@example.com", "body": "hi"}, job_id="mail-1")
    again = send.submit_with(kwargs={"body": "hi", "to": "a@example.com"}, job_id="mail-1")
    assert first == again == "mail-1"
    assert client.xlen(keys.jobs) == 1
    with pytest.raises(SubmitError, match="in use by a different job"):
        send.submit_with(kwargs={"body": "bye", "to": "a@example.com"}, job_id="mail-1")


def test_a_producer_shared_by_threads_gives_every_job_its_own_id_and_loses_none(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet, redis_url=redis_settings.url)

    @app.task
    def resize(image_id: str, width: int) -> None: ...

    ids: list[list[str]] = [[] for _ in range(8)]

    def submit_from(thread: int) -> None:
        for n in range(500):
            ids[thread].append(resize.submit(f"img-{n}", width=thread))
        ids[thread] += app.producer().submit_many([("resize", ("many", thread), {})] * 500)

    threads = [threading.Thread(target=submit_from, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every_id = [job_id for of_thread in ids for job_id in of_thread]
    assert len(every_id) == len(set(every_id)) == 8000
    assert client.xlen(keys.jobs) == 8000
