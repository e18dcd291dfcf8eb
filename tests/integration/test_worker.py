"""The worker against a real Redis: running, retrying, dead-lettering, reclaiming."""

from __future__ import annotations

import pickle
import threading
import time

import msgpack
import pytest

from fleetscale.app import App
from fleetscale.config import RedisSettings, WorkerSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import RedisCommandError
from fleetscale.jobstream import DeadLetter, JobStream, Settlement
from fleetscale.keys import GROUP, JOB_FIELD, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client, connect
from fleetscale.worker.housekeeper import PROMOTE_BATCH
from fleetscale.worker.process import build_worker
from tests.support.inproc import run_burst, worker_thread
from tests.support.payloads import nested, raw_job
from tests.support.procs import wait_until

MALFORMED = {
    "no job field": {b"x": b"1"},
    "not msgpack": {JOB_FIELD: b"\xc1\xc1\xc1"},
    "pickle bytes": {JOB_FIELD: pickle.dumps(("os", "system", "echo pwned"))},
    "not a map": {JOB_FIELD: msgpack.packb(["ok", []])},
    "missing id": {JOB_FIELD: raw_job(id=...)},
    "args not a list": {JOB_FIELD: raw_job(id="m1", args={"a": 1})},
    "kwargs not a map": {JOB_FIELD: raw_job(id="m2", kwargs=[1])},
    "unknown task": {JOB_FIELD: raw_job(id="m3", task="nope")},
    "dotted import path": {JOB_FIELD: raw_job(id="m4", task="os.system", args=["echo pwned"])},
    "bad args for the function": {JOB_FIELD: raw_job(id="m5", args=[1, 2, 3])},
    "oversized": {JOB_FIELD: raw_job(id="m6", args=["x" * 5000])},
    "invalid utf-8": {JOB_FIELD: b"\x84\xa2id\xa2m7\xa4task\xa2\xff\xfe\xa4args\x90\xa6kwargs\x80"},
    "deeply nested": {JOB_FIELD: raw_job(id="m8", args=nested(200))},
}


def test_each_kind_of_malformed_entry_is_dead_lettered_with_its_reason_and_the_rest_run(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    ran: list[int] = []

    @app.task
    def ok(i: int = 0) -> None:
        ran.append(i)

    producer = Producer(fleet, redis_settings.url)
    for i, fields in enumerate(MALFORMED.values()):
        producer.submit("ok", (i,))
        client.xadd(keys.jobs, fields)
    producer.submit("ok", (999,))
    run_burst(app, redis_settings, WorkerSettings(block_ms=100, max_payload_bytes=4096))

    assert sorted(ran) == [*range(len(MALFORMED)), 999]
    letters = DeadLetters(client, keys, redis_settings.url).list()
    reasons = [letter.reason for letter in letters]
    print("\n".join(f"{name}: {reason}" for name, reason in zip(MALFORMED, reasons, strict=True)))
    assert len(letters) == len(MALFORMED)
    assert all(reasons), "every dead letter names its reason"
    assert "unknown task 'os.system'" in reasons
    assert any("arguments do not fit" in r for r in reasons)
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0


def test_a_failing_job_is_retried_later_not_at_once(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    attempts: list[float] = []

    @app.task(max_attempts=3)
    def flaky() -> None:
        attempts.append(time.time())
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    Producer(fleet, redis_settings.url).submit("flaky")
    settings = WorkerSettings(block_ms=100, retry_base_s=0.2)
    run_burst(app, redis_settings, settings)
    assert len(attempts) == 1
    ((_, due_ms),) = client.zrange(keys.delayed, 0, -1, withscores=True)
    failed_at_s = attempts[0]
    assert due_ms / 1000 >= failed_at_s + 0.5 * settings.retry_base_s - 0.01, (
        "the retry waits its backoff"
    )
    with worker_thread(app, redis_settings, settings):
        wait_until(lambda: len(attempts) == 3, timeout_s=10, what="three attempts")
    assert DeadLetters(client, keys, redis_settings.url).count() == 0


def test_a_job_failing_every_attempt_is_dead_lettered_with_traceback_and_attempts(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)

    @app.task(max_attempts=2)
    def broken() -> None:
        raise ValueError("bad input")

    job_id = Producer(fleet, redis_settings.url).submit("broken")
    letters = DeadLetters(client, keys, redis_settings.url)
    with worker_thread(app, redis_settings, WorkerSettings(block_ms=100, retry_base_s=0.05)):
        wait_until(lambda: letters.count() == 1, timeout_s=10, what="the dead letter")
    (letter,) = letters.list()
    assert (letter.job_id, letter.task, letter.attempts) == (job_id, "broken", 2)
    assert letter.reason == "ValueError: bad input"
    assert "raise ValueError" in letter.traceback


def claim_as_ghost(client: Client, keys: FleetKeys, count: int = 100) -> list[bytes]:
    """Deliver entries to a consumer that will never ack (a dead worker)."""
    reply = client.xreadgroup(GROUP, "ghost", {keys.jobs: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]] if reply else []


def test_entries_of_a_dead_consumer_are_reclaimed_after_min_idle(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    ran: list[str] = []

    @app.task
    def work(key: str) -> None:
        ran.append(key)

    producer = Producer(fleet, redis_settings.url)
    JobStream(client, keys, redis_settings.url).ensure_group()
    producer.submit_many([("work", (f"k{i}",), {}) for i in range(5)])
    assert len(claim_as_ghost(client, keys)) == 5
    settings = WorkerSettings(block_ms=100, min_idle_s=0.3, reclaim_every_s=0.1)
    with worker_thread(app, redis_settings, settings):
        wait_until(lambda: len(ran) == 5, timeout_s=10, what="the reclaimed jobs")
    assert sorted(ran) == [f"k{i}" for i in range(5)]
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0


def test_abandoned_slow_jobs_are_shared_by_the_idle_workers_not_claimed_by_one(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # A host died holding 4 one-second jobs. A reclaim takes a batch as big as a fetch
    # (one slow job), so the second worker gets its share instead of watching.
    app = App(fleet)
    ran_by: dict[str, list[int]] = {}

    @app.task
    def slow(i: int) -> None:
        ran_by.setdefault(threading.current_thread().name, []).append(i)
        time.sleep(1.0)

    JobStream(client, keys, redis_settings.url).ensure_group()
    Producer(fleet, redis_settings.url).submit_many([("slow", (i,), {}) for i in range(4)])
    assert len(claim_as_ghost(client, keys)) == 4
    settings = WorkerSettings(block_ms=100, min_idle_s=0.3, reclaim_every_s=0.1)
    with worker_thread(app, redis_settings, settings), worker_thread(app, redis_settings, settings):
        wait_until(lambda: sum(map(len, ran_by.values())) == 4, timeout_s=20, what="the jobs")
    assert sorted(i for jobs in ran_by.values() for i in jobs) == [0, 1, 2, 3]
    assert len(ran_by) == 2, ran_by


def test_a_burst_worker_runs_the_abandoned_jobs_its_last_look_finds(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # Its last look before leaving claims them; it must run them, not leave them
    # pending under its own name.
    app = App(fleet)
    ran: list[int] = []

    @app.task
    def work(i: int) -> None:
        ran.append(i)
        if i == 3:
            time.sleep(1.0)  # the ghost's entries are idle past min_idle by the end

    JobStream(client, keys, redis_settings.url).ensure_group()
    producer = Producer(fleet, redis_settings.url)
    producer.submit_many([("work", (i,), {}) for i in range(3)])
    assert len(claim_as_ghost(client, keys)) == 3
    producer.submit("work", (3,))
    settings = WorkerSettings(block_ms=100, min_idle_s=0.5, reclaim_every_s=30.0)
    run_burst(app, redis_settings, settings)
    assert sorted(ran) == [0, 1, 2, 3]
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0


def test_a_job_whose_deliveries_used_up_its_attempts_is_dead_lettered_unrun(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    ran: list[int] = []

    @app.task(max_attempts=2)
    def poison() -> None:
        ran.append(1)

    JobStream(client, keys, redis_settings.url).ensure_group()
    Producer(fleet, redis_settings.url).submit("poison")
    (entry_id,) = claim_as_ghost(client, keys)
    client.xclaim(keys.jobs, GROUP, "ghost2", 0, [entry_id])  # a second delivery that died too
    settings = WorkerSettings(block_ms=100, min_idle_s=0.2, reclaim_every_s=0.1)
    letters = DeadLetters(client, keys, redis_settings.url)
    with worker_thread(app, redis_settings, settings):
        wait_until(lambda: letters.count() == 1, timeout_s=10, what="the dead letter")
    assert ran == []
    (letter,) = letters.list()
    assert letter.attempts == 2
    assert "gave up after 2 attempts" in letter.reason


def test_a_settle_sent_twice_dead_letters_and_retries_once(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    stream = JobStream(client, keys, redis_settings.url)
    stream.ensure_group()
    Producer(fleet, redis_settings.url).submit_many([("a", (), {}), ("b", (), {})])
    dead_id, retry_id = (d.entry_id for d in stream.fetch("w1", 2, None))
    settlement = Settlement(
        retries=[(retry_id, 60_000, b"job-b-again")],
        dead=[DeadLetter(dead_id, b"job-a", "broken", "", 3, "a", "a")],
    )
    for _ in range(2):  # the first reply was lost; the worker sends the settle again
        assert stream.settle("w1", settlement, check_owner=False) == []
    assert client.xlen(keys.dlq) == 1
    assert client.zcard(keys.delayed) == 1
    assert client.xpending(keys.jobs, GROUP)["pending"] == 0


def test_a_reclaimed_entry_is_charged_an_attempt_only_when_a_worker_starts_it(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    stream = JobStream(client, keys, redis_settings.url)
    stream.ensure_group()
    Producer(fleet, redis_settings.url).submit_many([("poison", (), {}), ("innocent", (), {})])
    claim_as_ghost(client, keys)  # a prefetched batch whose worker died on its first job
    first = stream.reclaim("w1", 0, b"0-0", 10).deliveries
    assert [(d.deliveries, d.charged) for d in first] == [(1, False), (1, False)]
    assert stream.charge("w1", first[0].entry_id) == 2, "starting the first one charges it"
    # w1 dies running the first; the second, never started, keeps its count.
    second = stream.reclaim("w2", 0, b"0-0", 10).deliveries
    assert [d.deliveries for d in second] == [2, 1]
    assert stream.charge("w1", first[1].entry_id) == 0, "w1 no longer owns it"


def test_a_worker_does_not_ack_an_entry_another_worker_claimed_meanwhile(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)

    @app.task
    def slow() -> None:
        # While this runs past min_idle, another consumer takes the entry over (as
        # if this worker had been paused and its entry reclaimed).
        pending = client.xpending_range(keys.jobs, GROUP, "-", "+", 1)
        client.xclaim(keys.jobs, GROUP, "other", 0, [pending[0]["message_id"]])
        time.sleep(0.3)

    Producer(fleet, redis_settings.url).submit("slow")
    settings = WorkerSettings(block_ms=100, min_idle_s=0.4, reclaim_every_s=60)
    with worker_thread(app, redis_settings, settings) as worker:
        wait_until(lambda: worker.consumer.stats.done == 1, timeout_s=10, what="the job to end")
        (entry,) = client.xpending_range(keys.jobs, GROUP, "-", "+", 10)
    assert worker.consumer.stats.lost == 1
    assert entry["consumer"] == b"other", "the entry stays pending for its new owner"


def test_a_long_job_keeps_its_lease_so_no_other_worker_runs_it(
    fleet: str, redis_settings: RedisSettings
) -> None:
    app = App(fleet)
    runs: list[str] = []

    @app.task
    def long_job() -> None:
        runs.append("start")
        time.sleep(2.0)

    Producer(fleet, redis_settings.url).submit("long_job")
    settings = WorkerSettings(block_ms=100, min_idle_s=0.5, reclaim_every_s=0.1)
    with worker_thread(app, redis_settings, settings) as first:
        wait_until(lambda: runs, timeout_s=5, what="the long job to start")
        with worker_thread(app, redis_settings, settings):
            wait_until(
                lambda: first.consumer.stats.done == 1, timeout_s=10, what="the long job to finish"
            )
    assert runs == ["start"], "the job ran once: its lease was renewed past min_idle"


def test_a_batch_interrupted_by_redis_going_away_is_finished_once_it_is_back(
    private_redis: EmbeddedRedis,
) -> None:
    # Redis freezes in the middle of a prefetched batch: the worker's next call fails.
    # The rest of the batch must still run (each job once) without waiting for min_idle:
    # the worker renews the leases of what it holds, so nobody else would ever run it.
    url, fleet, jobs = private_redis.url, "blip", 100
    client = connect(RedisSettings(url))
    app = App(fleet)
    ran: list[int] = []

    @app.task
    def work(i: int) -> None:
        ran.append(i)
        time.sleep(0.005)
        if i == 40:  # mid-batch: the first batch is one job, the second all the rest
            private_redis.pause()
            threading.Timer(1.5, private_redis.resume).start()

    keys = FleetKeys(fleet)
    JobStream(client, keys, url).ensure_group()
    Producer(fleet, url).submit_many([("work", (i,), {}) for i in range(jobs)])
    quick = RedisSettings(url, socket_timeout_s=0.5, retries=0)
    settings = WorkerSettings(block_ms=100, prefetch_window_s=5.0, min_idle_s=120.0)
    with worker_thread(app, quick, settings):
        wait_until(lambda: len(ran) == jobs, timeout_s=20, what="every job to run")
        wait_until(lambda: client.xpending(keys.jobs, GROUP)["pending"] == 0, timeout_s=10,
                   what="every job to be settled")  # fmt: skip
    assert sorted(ran) == list(range(jobs))


def test_entries_deleted_while_pending_are_reported_as_lost(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)

    @app.task
    def noop() -> None: ...

    JobStream(client, keys, redis_settings.url).ensure_group()
    Producer(fleet, redis_settings.url).submit("noop")
    (entry_id,) = claim_as_ghost(client, keys)
    client.xdel(keys.jobs, entry_id)
    settings = WorkerSettings(block_ms=100, min_idle_s=0.1, reclaim_every_s=0.1)
    with worker_thread(app, redis_settings, settings) as worker:
        wait_until(
            lambda: worker.consumer.stats.deleted_seen == 1, timeout_s=10, what="the deleted entry"
        )
    (lost,) = client.xrange(keys.lost)
    assert lost[1][b"entry_id"] == entry_id


def test_a_retried_telemetry_flush_counts_once(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    from fleetscale.telemetry import TelemetryFlusher, WindowDelta

    flusher = TelemetryFlusher(client, keys, "w1", redis_settings.url)
    windows = {1000: WindowDelta(done=3)}
    flusher._send(1, windows)
    flusher._send(1, windows)  # the reply was lost; the worker sends it again
    flusher._send(2, {1000: WindowDelta(done=1)})
    assert int(client.hget(keys.telemetry(1000), "done")) == 4
    assert client.ttl(keys.telemetry(1000)) > 0, "telemetry windows expire on their own"


def test_a_dead_letter_replays_as_a_fresh_job(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet)
    calls: list[int] = []

    @app.task(max_attempts=1)
    def once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first time fails")

    Producer(fleet, redis_settings.url).submit("once")
    run_burst(app, redis_settings)
    letters = DeadLetters(client, keys, redis_settings.url)
    assert letters.count() == 1
    result = letters.replay()
    assert len(result.replayed) == 1 and letters.count() == 0
    run_burst(app, redis_settings)
    assert len(calls) == 2 and letters.count() == 0


def fill_to_maxmemory(producer: Producer, client: Client) -> int:
    """Cap Redis at 1 MB above its use and submit padded jobs until it refuses one."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 1_000_000)
    for submitted in range(100_000):
        try:
            producer.submit("work", (f"k{submitted}", "x" * 2000))
        except RedisCommandError as exc:
            assert "out of memory" in str(exc), exc
            return submitted
    raise AssertionError("Redis never reached maxmemory")


def test_a_worker_started_at_maxmemory_drains_the_queue(private_redis: EmbeddedRedis) -> None:
    url = private_redis.url
    client = connect(RedisSettings(url))
    fleet, keys = "full", FleetKeys("full")
    app = App(fleet)
    ran: list[str] = []

    @app.task
    def work(key: str, pad: str) -> None:
        ran.append(key)

    JobStream(client, keys, url).ensure_group()
    submitted = fill_to_maxmemory(Producer(fleet, url), client)
    consumer = run_burst(app, RedisSettings(url))
    assert (consumer.stats.done, len(ran)) == (submitted, submitted)


def test_at_maxmemory_failing_jobs_are_retried_and_dead_lettered_and_the_rest_drain(
    private_redis: EmbeddedRedis,
) -> None:
    # A retry or a dead letter is a write Redis refuses at maxmemory; settling it must
    # not block the acks settled with it, or the worker stops draining the queue.
    url = private_redis.url
    client = connect(RedisSettings(url))
    fleet, keys = "full", FleetKeys("full")
    app = App(fleet)
    ran: list[str] = []

    @app.task(max_attempts=1)
    def work(key: str, pad: str) -> None:
        ran.append(key)
        if key in ("k0", "k1"):
            raise RuntimeError("fails")

    JobStream(client, keys, url).ensure_group()
    submitted = fill_to_maxmemory(Producer(fleet, url), client)
    with worker_thread(app, RedisSettings(url)) as worker:
        wait_until(lambda: len(ran) == submitted, timeout_s=30, what="every job to run")
        wait_until(lambda: client.xpending(keys.jobs, GROUP)["pending"] == 0, timeout_s=10,
                   what="every job to be settled")  # fmt: skip
    assert (worker.consumer.stats.done, worker.consumer.stats.failed) == (submitted - 2, 2)
    assert DeadLetters(client, keys, url).count() == 2


def test_at_maxmemory_without_a_group_a_worker_says_why_it_cannot_start(
    private_redis: EmbeddedRedis,
) -> None:
    url = private_redis.url
    client = connect(RedisSettings(url))
    app = App("full")
    fill_to_maxmemory(Producer("full", url), client)
    with pytest.raises(RedisCommandError, match="refuses to create the consumer group"):
        run_burst(app, RedisSettings(url))


def test_one_promote_tick_moves_more_due_jobs_than_one_batch(
    fleet: str, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    app = App(fleet)
    producer = Producer(fleet, redis_settings.url)
    due = PROMOTE_BATCH * 2 + 100
    for n in range(due):
        producer.submit("later", (n,), delay_s=0.05)
    wait_until(lambda: client.zcount(keys.delayed, "-inf", int(time.time() * 1000)) == due)
    parts = build_worker(app, redis_settings, WorkerSettings())
    parts.housekeeper.promote()
    assert client.xlen(keys.jobs) == due, "every due job in one tick, not one batch of them"
    assert client.zcard(keys.delayed) == 0
