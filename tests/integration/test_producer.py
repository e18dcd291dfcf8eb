"""The producer against a real Redis: ids, idempotency, delays, backpressure, limits."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fleetscale.app import App
from fleetscale.codec import decode_job
from fleetscale.config import RedisSettings
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import (
    FleetscaleError,
    Overloaded,
    PayloadTooLarge,
    RedisUnavailable,
    SubmitError,
)
from fleetscale.jobstream import JobStream
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.producer import JobSpec, Producer
from fleetscale.store import Client
from tests.faults.security import acl_with_passwords, role_url
from tests.support.inproc import worker_thread
from tests.support.procs import wait_until
from tests.support.replycut import reply_cut


@pytest.fixture
def producer(fleet: str, redis_settings: RedisSettings) -> Producer:
    return Producer(fleet, redis_settings.url)


def stream_jobs(client: Client, keys: FleetKeys) -> list:
    return [decode_job(fields, 1 << 20) for _, fields in client.xrange(keys.jobs)]


def test_submit_returns_a_fresh_id_and_puts_the_job_in_the_stream(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    first = producer.submit("resize", ("img-1",), {"width": 640})
    second = producer.submit("resize", ("img-1",), {"width": 640})
    assert first != second
    jobs = stream_jobs(client, keys)
    assert [j.job_id for j in jobs] == [first, second]
    assert (jobs[0].task, jobs[0].args, jobs[0].kwargs) == ("resize", ["img-1"], {"width": 640})


def test_an_explicit_job_id_submitted_twice_makes_one_job(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    assert producer.submit("resize", ("img-2", 320), job_id="img-2@320") == "img-2@320"
    assert producer.submit("resize", ("img-2", 320), job_id="img-2@320") == "img-2@320"
    assert client.xlen(keys.jobs) == 1


def test_a_different_job_under_a_known_job_id_is_refused_not_dropped(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    producer.submit("resize", ("img-3", 320), job_id="img-3")
    with pytest.raises(SubmitError, match="'img-3' is already in use by a different job"):
        producer.submit("resize", ("img-3", 640), job_id="img-3")
    assert producer.submit("resize", ("img-3", 320), job_id="img-3") == "img-3", "a retry"
    assert client.xlen(keys.jobs) == 1


def test_a_delayed_job_waits_in_the_delayed_set_until_due(
    producer: Producer, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    producer.submit("mail.send", kwargs={"to": "a"}, delay_s=0.3)
    assert client.xlen(keys.jobs) == 0
    assert client.zcard(keys.delayed) == 1
    stream = JobStream(client, keys, redis_settings.url)
    assert stream.promote_due() == 0, "a job must not run before its delay"
    wait_until(lambda: stream.promote_due() == 1, timeout_s=5, what="the delayed job to come due")
    assert client.zcard(keys.delayed) == 0
    assert [j.task for j in stream_jobs(client, keys)] == ["mail.send"]


def test_submit_many_pipelines_jobs_in_order(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    ids = producer.submit_many([("resize", (f"img-{i}",), {}) for i in range(2500)])
    assert len(set(ids)) == 2500
    assert [j.job_id for j in stream_jobs(client, keys)] == ids


def test_submit_many_failing_part_way_says_which_jobs_went_in(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    # The backlog is checked per chunk: 0 and 2 are below 3, so two chunks go in and
    # the third is refused. A caller retrying must not resubmit the first four.
    producer = Producer(fleet, redis_settings.url, max_backlog=3)
    with pytest.raises(Overloaded, match="the first 4 of 5 jobs were submitted") as caught:
        producer.submit_many([("noop", (i,), {}) for i in range(5)], chunk=2)
    assert caught.value.submitted == [j.job_id for j in stream_jobs(client, keys)]
    assert [j.args for j in stream_jobs(client, keys)] == [[0], [1], [2], [3]]
    with pytest.raises(Overloaded, match="the first 0 of 1 jobs") as caught:
        producer.submit_many([("noop", (), {})])
    assert caught.value.submitted == []


@pytest.mark.timeout(30)
def test_submit_many_cut_off_by_redis_going_down_says_which_jobs_went_in(
    private_redis: EmbeddedRedis, fleet: str
) -> None:
    producer = Producer(fleet, private_redis.url)

    def jobs() -> Iterator[JobSpec]:
        yield from [("noop", (0,), {}), ("noop", (1,), {})]
        private_redis.kill()  # after the first chunk went in
        yield ("noop", (2,), {})

    with pytest.raises(RedisUnavailable, match="the first 2 of at least 3 jobs") as caught:
        producer.submit_many(jobs(), chunk=2)
    assert len(caught.value.submitted) == 2


def test_overloaded_is_raised_at_max_backlog_with_a_retry_hint(
    fleet: str, redis_settings: RedisSettings
) -> None:
    producer = Producer(fleet, redis_settings.url, max_backlog=5)
    for i in range(5):
        producer.submit("noop", job_id=f"fill-{i}")
    with pytest.raises(Overloaded) as caught:
        producer.submit("noop")
    assert caught.value.backlog == 5
    assert caught.value.retry_after_s > 0
    with pytest.raises(Overloaded):
        producer.submit_many([("noop", (), {})])


def test_with_a_timeout_submit_waits_until_workers_make_room(
    fleet: str, redis_settings: RedisSettings
) -> None:
    app = App(fleet)
    gate = threading.Event()

    @app.task
    def noop() -> None:
        gate.wait(10)

    producer = Producer(fleet, redis_settings.url, max_backlog=3)
    producer.submit_many([("noop", (), {})] * 3)
    with pytest.raises(Overloaded):
        producer.submit("noop")
    with worker_thread(app, redis_settings):
        threading.Timer(0.3, gate.set).start()
        job_id = producer.submit("noop", timeout_s=20)
    assert job_id


def test_a_payload_over_the_limit_is_refused_before_reaching_redis(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    producer = Producer(fleet, redis_settings.url)
    with pytest.raises(PayloadTooLarge, match="1048576"):
        producer.submit("resize", ("x" * (1 << 20),))
    assert client.exists(keys.jobs) == 0


def test_bad_arguments_are_refused_with_a_clear_message(producer: Producer) -> None:
    with pytest.raises(SubmitError, match="cannot be encoded"):
        producer.submit("resize", (object(),))
    with pytest.raises(SubmitError, match="bad task name"):
        producer.submit("")
    with pytest.raises(SubmitError, match="delay_s"):
        producer.submit("resize", delay_s=-1)


@pytest.mark.parametrize("delay_s", [float("nan"), float("inf"), float("-inf"), 1e306, -0.5])
@pytest.mark.parametrize("job_id", [None, "j-1"])
def test_a_negative_or_non_finite_delay_is_refused_naming_it(
    producer: Producer, client: Client, keys: FleetKeys, delay_s: float, job_id: str | None
) -> None:
    with pytest.raises(SubmitError, match=re.escape(f"bad delay_s={delay_s!r}")):
        producer.submit("mail.send", delay_s=delay_s, job_id=job_id)
    assert client.exists(keys.jobs, keys.delayed) == 0


def test_a_dict_key_that_is_not_a_str_is_refused_at_submit_not_dead_lettered(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    # msgpack packs an int key, but a worker unpacks with strict_map_key and would
    # dead-letter the job as "payload is not msgpack".
    with pytest.raises(SubmitError, match=r"dict key that is not a str, 17 \(int\)"):
        producer.submit("t", args=({17: 0.5},))
    with pytest.raises(SubmitError, match="dict key that is not a str"):
        producer.submit_many([("t", ("ok",), {}), ("t", (), {"w": {None: 1}})])
    assert client.exists(keys.jobs) == 0


@pytest.mark.timeout(30)
def test_with_redis_down_submit_raises_a_fleetscale_error_instead_of_hanging(
    private_redis: EmbeddedRedis, fleet: str
) -> None:
    producer = Producer(fleet, private_redis.url)
    producer.submit("noop")
    private_redis.kill()
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        producer.submit("noop")
    print(f"submit with Redis down failed after {time.monotonic() - started:.2f}s")


@pytest.mark.timeout(30)
def test_with_redis_frozen_submit_times_out_instead_of_hanging(
    private_redis: EmbeddedRedis, fleet: str
) -> None:
    producer = Producer(fleet, private_redis.url)
    producer.submit("noop")
    private_redis.pause()
    started = time.monotonic()
    try:
        with pytest.raises(RedisUnavailable):
            producer.submit("noop")
    finally:
        private_redis.resume()
    print(f"submit with Redis frozen failed after {time.monotonic() - started:.2f}s")


def test_a_submit_whose_reply_timed_out_is_never_resent(
    private_redis: EmbeddedRedis, fleet: str
) -> None:
    producer = Producer(fleet, private_redis.url)
    producer.submit("noop")
    private_redis.pause()
    # Frozen a little past the 2 s socket timeout: the XADD sent before is still
    # queued and runs on resume; a retry would add the job a second time.
    thaw = threading.Timer(2.5, private_redis.resume)
    thaw.start()
    try:
        producer.submit("noop", args=("during",))
        outcome = "returned"
    except RedisUnavailable:
        outcome = "raised"
    thaw.join()
    added = [e for e in producer.client.xrange(producer.keys.jobs) if b"during" in e[1][b"j"]]
    print(f"submit {outcome}; the job is in the stream {len(added)}×")
    assert len(added) <= 1, "the job was added twice by a resent XADD"


def test_redis_errors_never_escape_as_redis_py_exceptions(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    client.set(keys.jobs, "not a stream")
    with pytest.raises(FleetscaleError, match="WRONGTYPE"):
        producer.submit("noop")


def test_a_task_submits_itself_through_its_app(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet, redis_url=redis_settings.url)

    @app.task(name="mail.send", max_attempts=5, timeout_s=30)
    def send(to: str, body: str) -> None: ...

    job_id = send.submit("a@example.com", body="hi")
    (job,) = stream_jobs(client, keys)
    assert (job.job_id, job.task, job.args, job.kwargs) == (
        job_id,
        "mail.send",
        ["a@example.com"],
        {"body": "hi"},
    )


@pytest.mark.parametrize(("job_id", "copies"), [("lost-reply-1", 1), (None, 2)])
def test_a_connection_broken_before_the_reply_resends_once_and_only_a_job_id_dedups_it(
    redis_settings: RedisSettings,
    client: Client,
    keys: FleetKeys,
    job_id: str | None,
    copies: int,
) -> None:
    """The README's residual: without a job_id the resent job goes in twice."""
    fleet = keys.fleet
    Producer(fleet, redis_settings.url).submit("warm", job_id="loads-the-script")
    client.delete(keys.jobs)
    command = b"EVALSHA" if job_id else b"XADD"
    url = urlsplit(redis_settings.url)
    with reply_cut(url.hostname or "", url.port or 6379, command) as proxy:
        credentials = url.netloc.rpartition("@")[0]
        netloc = (
            f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
        )
        via_proxy = Producer(fleet, url._replace(netloc=netloc).geturl())
        returned = via_proxy.submit("noop", job_id=job_id)
        via_proxy.close()
    assert proxy.cuts == 1, "the proxy never cut the submission"
    jobs = stream_jobs(client, keys)
    assert [job.job_id for job in jobs] == [returned] * copies


def test_a_producer_used_in_a_forked_child_hands_out_ids_the_parent_does_not(
    producer: Producer, client: Client, keys: FleetKeys
) -> None:
    """The child inherits the id prefix and counter; it must not repeat the parent's ids."""
    producer.submit("noop")  # connected and counting before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: submit, report the ids, leave without pytest's clean-up
        try:
            ids = [producer.submit("noop", ("child",)) for _ in range(3)]
            os.write(write_end, " ".join(ids).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_ids = pipe.read().split()
    os.waitpid(pid, 0)
    parent_ids = [producer.submit("noop", ("parent",)) for _ in range(3)]
    assert len(child_ids) == 3, "the child submitted nothing"
    assert not set(child_ids) & set(parent_ids), "parent and child gave two jobs one id"
    assert len({job.job_id for job in stream_jobs(client, keys)}) == 7


def leave_three_jobs_with_the_lag_unknown(client: Client, keys: FleetKeys) -> None:
    """Ten jobs; a worker reads eight and acknowledges six; the tenth, unread, is
    deleted. Redis then reports no lag for the group (REDIS-FACTS), while one job is
    queued and two are running: a backlog of 3, in a stream of 9 entries."""
    entry_ids = [client.xadd(keys.jobs, {"j": b"x"}) for _ in range(10)]
    client.xgroup_create(keys.jobs, GROUP, id="0")
    ((_, read),) = client.xreadgroup(GROUP, "w1", {keys.jobs: ">"}, count=8)
    client.xack(keys.jobs, GROUP, *[entry_id for entry_id, _ in read[:6]])
    client.xdel(keys.jobs, entry_ids[-1])
    assert client.xinfo_groups(keys.jobs)[0]["lag"] is None


def test_with_the_group_lag_unknown_the_backlog_is_not_counted_twice(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    """The fallback added the pending entries to the stream length, which holds them
    already, and counted acknowledged entries too: 3 jobs were taken for 11."""
    leave_three_jobs_with_the_lag_unknown(client, keys)
    producer = Producer(fleet, redis_settings.url, max_backlog=10)
    assert producer.backlog() in (3, 4), "the deleted entry may count, nothing else"
    producer.submit("noop")
    producer.submit("noop", job_id="after-xdel")
    producer.submit_many([("noop", (), {})])


def test_the_documented_producer_acl_can_submit_when_the_lag_is_unknown(
    tmp_path: Path, fleet: str
) -> None:
    """The producer role may not run XINFO STREAM: it gets the stream length instead."""
    acl_file, passwords = acl_with_passwords(tmp_path / "acl")
    server = EmbeddedRedis(tmp_path / "redis", extra_args=("--aclfile", str(acl_file))).start()
    try:
        admin = Producer(fleet, server.url).client
        leave_three_jobs_with_the_lag_unknown(admin, FleetKeys(fleet))
        url = role_url("producer", passwords["producer"], server.port)
        producer = Producer(fleet, url, max_backlog=20)
        assert producer.backlog() == admin.xlen(producer.keys.jobs) == 9
        producer.submit("noop", job_id="as-the-producer-role")
        producer.submit_many([("noop", (), {})])
    finally:
        server.kill()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("timeout_s", [float("nan"), -1.0, "2"])
def test_a_nan_or_negative_timeout_is_refused_naming_it_instead_of_waiting_for_ever(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys, timeout_s: float
) -> None:
    producer = Producer(fleet, redis_settings.url, max_backlog=1)
    producer.submit("noop")
    with pytest.raises(SubmitError, match=re.escape(f"bad timeout_s={timeout_s!r}")):
        producer.submit("noop", timeout_s=timeout_s)
    with pytest.raises(SubmitError, match=re.escape(f"bad timeout_s={timeout_s!r}")) as caught:
        producer.submit_many([("noop", (), {})], timeout_s=timeout_s)
    assert caught.value.submitted == []
    assert client.xlen(keys.jobs) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "refusal"),
    [
        ("img-1", None, "args of task 'resize' must be a list or tuple, not str 'img-1'"),
        (b"img-1", None, "must be a list or tuple, not bytes"),
        (640, None, "must be a list or tuple, not int 640"),
        ((), "width", "kwargs of task 'resize' must be a dict of keyword arguments, not str"),
        ((), [("width", 640)], "must be a dict of keyword arguments, not list"),
    ],
)
def test_args_that_are_a_string_or_no_sequence_and_kwargs_no_mapping_are_refused(
    producer: Producer, args: object, kwargs: object, refusal: str
) -> None:
    """`args=("img-1")` (the 1-tuple's comma forgotten) ran the task with five one-letter
    arguments; the others escaped as TypeError or ValueError, not FleetscaleError."""
    with pytest.raises(SubmitError, match=re.escape(refusal)):
        producer.submit("resize", args, kwargs)
    with pytest.raises(SubmitError, match=re.escape(refusal)) as caught:
        producer.submit_many([("resize", ("ok",), {}), ("resize", args, kwargs or {})])
    assert caught.value.submitted == []
    assert producer.client.exists(producer.keys.jobs) == 0


@pytest.mark.parametrize("spec", [("noop",), ("noop", (), {}, 1), "noop", None])
def test_a_submit_many_job_that_is_not_a_task_args_kwargs_triple_is_refused(
    producer: Producer, spec: object
) -> None:
    with pytest.raises(SubmitError, match=r"job 1 of submit_many is .*\(task, args, kwargs\)"):
        producer.submit_many([("noop", (), {}), spec])


def test_settings_without_a_url_leave_the_url_to_the_environment(
    fleet: str, redis_settings: RedisSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precedence is argument > FLEETSCALE_REDIS_URL > default: settings given only for
    their timeouts carry the default URL, which took the place of the environment's."""
    monkeypatch.setenv("FLEETSCALE_REDIS_URL", redis_settings.url)
    producer = Producer(fleet, redis=RedisSettings(socket_timeout_s=5.0))
    assert producer.redis_settings.url == redis_settings.url
    assert producer.redis_settings.socket_timeout_s == 5.0
    explicit = RedisSettings(url="redis://127.0.0.1:1/0")
    assert Producer(fleet, redis=explicit).redis_settings.url == explicit.url
    assert Producer(fleet, "redis://127.0.0.1:2/0", redis=explicit).redis_settings.url == (
        "redis://127.0.0.1:2/0"
    )


@pytest.mark.parametrize(
    ("dedup_ttl_s", "delay_s"), [(float("inf"), 0.0), (1e17, 0.0), (86_400.0, 1e16)]
)
def test_a_job_id_remembered_longer_than_redis_can_expire_goes_in_once(
    fleet: str, redis_settings: RedisSettings, client: Client, dedup_ttl_s: float, delay_s: float
) -> None:
    """The id key's TTL is capped: Redis refused it after the job was added, so the
    submit raised (or inf raised OverflowError) and every retry added the job again."""
    producer = Producer(fleet, redis_settings.url, dedup_ttl_s=dedup_ttl_s)
    for _ in range(2):  # a caller retrying under the same job_id
        assert producer.submit("noop", job_id="far-future", delay_s=delay_s) == "far-future"
    keys = producer.keys
    assert client.xlen(keys.jobs) + client.zcard(keys.delayed) == 1
    assert client.ttl(keys.job_id("far-future")) > 86_400


def test_a_task_submits_itself_and_with_job_options(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    app = App(fleet, redis_url=redis_settings.url)

    @app.task
    def resize(image_id: str, width: int) -> None: ...

    resize.submit("img-4", width=128)
    assert resize.submit_with(("img-5",), {"width": 64}, job_id="img-5@64") == "img-5@64"
    assert resize.submit_with(("img-5",), {"width": 64}, job_id="img-5@64") == "img-5@64"
    resize.submit_with(("img-6", 32), delay_s=60)
    queued = [(j.task, j.args, j.kwargs) for j in stream_jobs(client, keys)]
    assert queued == [("resize", ["img-4"], {"width": 128}), ("resize", ["img-5"], {"width": 64})]
    assert client.zcard(keys.delayed) == 1, "the delayed one waits"
