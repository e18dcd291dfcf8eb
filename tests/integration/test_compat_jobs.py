"""Rolling upgrades: workers and `dlq replay` of this version carry on the job fields a
newer version's producer wrote."""

from __future__ import annotations

import msgpack

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.store import Client
from tests.support.inproc import worker_thread
from tests.support.procs import wait_until


def test_a_retried_dead_lettered_and_replayed_job_keeps_the_fields_of_a_newer_producer(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    app = App(keys.fleet)
    runs: list[int] = []

    @app.task(max_attempts=2)
    def fails(i: int) -> None:
        runs.append(i)
        raise RuntimeError("boom")

    newer = {"id": "j1", "task": "fails", "args": [1], "kwargs": {}, "n": 0,
             "deadline_ms": 1_900_000_000_000, "trace": {"span": "ab12"}}  # fmt: skip
    client.xadd(keys.jobs, {JOB_FIELD: msgpack.packb(newer)})
    settings = WorkerSettings(block_ms=100, retry_base_s=0.01, retry_cap_s=0.01)
    with worker_thread(app, redis_settings, settings):
        wait_until(lambda: client.xlen(keys.dlq) == 1, timeout_s=20, what="the dead letter")
    assert runs == [1, 1], "it ran, was retried once, then dead-lettered"
    (letter,) = client.xrange(keys.dlq)
    dead = msgpack.unpackb(letter[1][JOB_FIELD])
    assert dead == newer | {"n": 1}, "the retry kept the newer fields"
    assert DeadLetters(client, keys, redis_settings.url).replay().replayed == [letter[0].decode()]
    *_, (_, fields) = client.xrange(keys.jobs)
    assert msgpack.unpackb(fields[JOB_FIELD]) == newer, "the replay kept them too"
