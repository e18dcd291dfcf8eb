"""Real worker processes: crashes, drains, time limits, poison jobs, Redis restarts."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import redis

from fleetscale.config import MIB
from fleetscale.deadletters import DeadLetters
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import FleetscaleError
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.support.fleet import LedgerFleet, pending_of_pid
from tests.support.ledger import done_counts, read_ledger
from tests.support.procs import wait_until


@pytest.mark.timeout(240)
def test_a_killed_worker_loses_nothing_and_duplicates_at_most_what_it_held(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    jobs = 20_000
    producer = Producer(ledger_fleet.fleet, ledger_fleet.redis_url)
    producer.submit_many([("record", (f"k{i}", 0.0005), {}) for i in range(jobs)])
    first = ledger_fleet.worker("--min-idle", "2s")
    second = ledger_fleet.worker("--min-idle", "2s")
    wait_until(
        lambda: sum(done_counts(ledger_fleet.ledger).values()) >= 5000,
        timeout_s=60,
        what="5000 jobs done",
    )
    first.signal(signal.SIGKILL)
    first.wait(10)
    held = pending_of_pid(client, keys, first.pid)
    replacement = ledger_fleet.worker("--min-idle", "2s")
    wait_until(
        lambda: len(done_counts(ledger_fleet.ledger)) == jobs, timeout_s=180, what="every job done"
    )
    done = done_counts(ledger_fleet.ledger)
    duplicates = sum(n - 1 for n in done.values())
    print(f"killed worker held {held} entries; {duplicates} jobs ran twice; 0 of {jobs} lost")
    assert set(done) == {f"k{i}" for i in range(jobs)}, "every job completes"
    assert duplicates <= held
    assert second.alive() and replacement.alive()


@pytest.mark.timeout(120)
def test_sigterm_drains_a_worker_under_load_with_no_loss_or_duplicate_and_exit_0(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    jobs = 1500
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit_many(
        [("record", (f"k{i}", 0.005), {}) for i in range(jobs)]
    )
    worker = ledger_fleet.worker()
    wait_until(
        lambda: sum(done_counts(ledger_fleet.ledger).values()) >= 200,
        timeout_s=60,
        what="200 jobs done",
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert pending_of_pid(client, keys, worker.pid) == 0, "the draining worker acked all it held"
    ledger_fleet.worker("--burst").wait(120)
    done = done_counts(ledger_fleet.ledger)
    assert set(done) == {f"k{i}" for i in range(jobs)}
    assert max(done.values()) == 1, "no job ran twice"


@pytest.mark.timeout(60)
def test_a_second_sigterm_exits_at_once(ledger_fleet: LedgerFleet) -> None:
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("record", ("long", 30.0))
    worker = ledger_fleet.worker()
    wait_until(lambda: read_ledger(ledger_fleet.ledger), timeout_s=30, what="the long job to start")
    worker.signal(signal.SIGTERM)
    time.sleep(0.2)  # let the first signal be handled before the second arrives
    assert worker.alive(), "the first SIGTERM waits for the running job"
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) != 0


@pytest.mark.timeout(60)
def test_a_job_past_its_time_limit_is_interrupted_and_dead_lettered(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("hang", ("h", 5.0))
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("record", ("after",))
    worker = ledger_fleet.worker()
    letters = DeadLetters(client, keys, ledger_fleet.redis_url)
    wait_until(lambda: letters.count() == 1, timeout_s=30, what="the timed-out job's dead letter")
    (letter,) = letters.list()
    assert letter.reason.startswith("JobTimeout"), letter.reason
    wait_until(
        lambda: done_counts(ledger_fleet.ledger)["after"] == 1, timeout_s=30, what="the next job"
    )
    assert done_counts(ledger_fleet.ledger)["h"] == 0
    assert worker.alive()


@pytest.mark.timeout(120)
def test_a_poison_job_that_kills_its_worker_is_dead_lettered_after_max_attempts(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("crash", ("p",))
    letters = DeadLetters(client, keys, ledger_fleet.redis_url)
    for _ in range(2):  # max_attempts=2: two workers die running it
        assert ledger_fleet.worker("--min-idle", "1s").wait(30) == 9
    survivor = ledger_fleet.worker("--min-idle", "1s")
    wait_until(lambda: letters.count() == 1, timeout_s=30, what="the poison job's dead letter")
    starts = [e for e in read_ledger(ledger_fleet.ledger) if e.kind == "start"]
    assert len(starts) == 2, "it ran exactly max_attempts times"
    assert letters.list()[0].attempts == 2
    assert survivor.alive()


@pytest.mark.timeout(180)
def test_producers_and_workers_ride_out_a_redis_restart_without_losing_acknowledged_jobs(
    private_redis: EmbeddedRedis, procs, fleet: str, tmp_path
) -> None:
    fleet_ = LedgerFleet(procs, fleet, private_redis.url, tmp_path / "ledger.txt")
    workers = [fleet_.worker("--min-idle", "3s") for _ in range(2)]
    producer = Producer(fleet, private_redis.url)
    acknowledged: list[str] = []
    refused = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal refused
        i = 0
        while not stop.is_set():
            key = f"k{i}"
            i += 1
            try:
                producer.submit("record", (key,), job_id=key)
                acknowledged.append(key)
            except FleetscaleError:
                refused += 1
                time.sleep(0.05)
            time.sleep(0.002)

    registered = redis.Redis.from_url(private_redis.url, socket_timeout=5)
    wait_until(  # a worker still starting when Redis goes exits 3 (unreachable at start)
        lambda: registered.zcard(FleetKeys(fleet).workers) == len(workers),
        timeout_s=60,
        what="both workers registered",
    )
    registered.close()
    thread = threading.Thread(target=produce)
    thread.start()
    try:
        wait_until(
            lambda: len(done_counts(fleet_.ledger)) >= 300,
            timeout_s=30,
            what="load before the restart",
        )
        private_redis.kill()
        time.sleep(5)
        private_redis.start()
        at_restart = len(acknowledged)
        wait_until(
            lambda: len(acknowledged) > at_restart + 300,
            timeout_s=60,
            what="submits after the restart",
        )
    finally:
        stop.set()
        thread.join()
    wait_until(
        lambda: set(acknowledged) <= set(done_counts(fleet_.ledger)),
        timeout_s=60,
        what="every acknowledged job done",
    )
    print(f"{len(acknowledged)} acknowledged, {refused} refused in the outage, none lost")
    assert refused > 0, "the outage was seen by the producer"
    assert all(w.alive() for w in workers), "workers survived without a restart"


@pytest.mark.timeout(120)
def test_a_worker_started_with_a_larger_payload_limit_runs_jobs_above_the_default(
    ledger_fleet: LedgerFleet, client: Client, keys: FleetKeys
) -> None:
    big = "x" * (MIB + MIB // 2)
    producer = Producer(ledger_fleet.fleet, ledger_fleet.redis_url, max_payload_bytes=2 * MIB)
    producer.submit("record", (big,))
    ledger_fleet.worker("--burst", "--max-payload-bytes", str(2 * MIB)).wait(60)
    assert client.xlen(keys.dlq) == 0, "not dead-lettered as too large"
    assert done_counts(ledger_fleet.ledger) == {big: 1}


def test_a_follow_up_job_submitted_by_a_task_goes_to_the_workers_redis(
    ledger_fleet: LedgerFleet,
) -> None:
    """`--redis-url` outranks FLEETSCALE_REDIS_URL for the worker, and for the producer
    its tasks submit through: that one read only the environment."""
    Producer(ledger_fleet.fleet, ledger_fleet.redis_url).submit("chain", args=("next",))
    elsewhere = {"FLEETSCALE_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there
    ledger_fleet.worker("--redis-url", ledger_fleet.redis_url, env=elsewhere)
    wait_until(lambda: done_counts(ledger_fleet.ledger).get("next") == 1, timeout_s=30,
               what="the follow-up job to run")  # fmt: skip
