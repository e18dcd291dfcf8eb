"""submit_many adds a chunk as batches, each one script call: order, size, maxmemory."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscale import jobstream
from fleetscale.codec import decode_job
from fleetscale.config import RedisSettings
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import RedisCommandError
from fleetscale.jobstream import ADD_BATCH_JOBS, batch_size
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client
from tests.faults.security import acl_with_passwords, role_url


def stream_ids(client: Client, keys: FleetKeys) -> list[str]:
    return [decode_job(fields, 1 << 20).job_id for _, fields in client.xrange(keys.jobs)]


def test_a_batch_holds_a_thousand_small_jobs_or_fewer_large_ones() -> None:
    assert batch_size([b"x" * 100] * 5000) == ADD_BATCH_JOBS
    assert batch_size([b"x" * 100, b"y" * (1 << 20)]) == 8, "8 MiB of the largest"
    assert batch_size([b"x" * (20 << 20)]) == 1, "one job larger than a batch goes alone"
    assert batch_size([]) == ADD_BATCH_JOBS


def test_jobs_cut_into_many_batches_go_in_whole_and_in_order(
    fleet: str,
    client: Client,
    keys: FleetKeys,
    redis_settings: RedisSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobstream, "ADD_BATCH_BYTES", 10_000)  # 3 jobs of 3 KB a batch
    producer = Producer(fleet, redis_settings.url)
    ids = producer.submit_many([("noop", ("x" * 3000, i), {}) for i in range(50)], chunk=20)
    assert stream_ids(client, keys) == ids
    assert len(set(ids)) == 50


def test_a_chunk_refused_at_maxmemory_is_in_redis_whole_or_not_at_all(
    private_redis: EmbeddedRedis,
) -> None:
    """A pipeline of XADDs stopped where Redis passed maxmemory: 416 jobs of the failing
    chunk went in while the error said none of it had, so a caller resubmitting the
    chunk added those twice."""
    producer = Producer("oom", private_redis.url)
    client = producer.client
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + 3_000_000)
    acknowledged: list[str] = []
    with pytest.raises(RedisCommandError, match="out of memory") as caught:
        for _ in range(20):  # about 1.2 MB a chunk: refused by the third
            acknowledged += producer.submit_many([("noop", ("x" * 1000,), {})] * 1000)
    assert caught.value.submitted == []
    assert len(acknowledged) >= 1000
    assert stream_ids(client, producer.keys) == acknowledged, "jobs in Redis nobody was told of"


def test_the_documented_producer_acl_can_submit_many(tmp_path: Path, fleet: str) -> None:
    """A batch is a script call (EVALSHA, SCRIPT LOAD) running XADD on the jobs key."""
    acl_file, passwords = acl_with_passwords(tmp_path / "acl")
    server = EmbeddedRedis(tmp_path / "redis", extra_args=("--aclfile", str(acl_file))).start()
    try:
        url = role_url("producer", passwords["producer"], server.port)
        producer = Producer(fleet, url)
        ids = producer.submit_many([("noop", (i,), {}) for i in range(1500)])
        admin = Producer(fleet, server.url).client
        assert stream_ids(admin, producer.keys) == ids
    finally:
        server.kill()


def test_a_chunk_of_several_batches_refused_part_way_lists_the_batches_that_went_in(
    private_redis: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large jobs cut a chunk into batches: the error listed none of the chunk's jobs as
    submitted while its first batches were in Redis, and a resubmit ran them twice."""
    monkeypatch.setattr(jobstream, "ADD_BATCH_BYTES", 100_000)  # 3 batches of about 90 jobs
    producer = Producer("oom", private_redis.url)
    client = producer.client
    jobs = [("noop", ("x" * 1000,), {})] * 250
    for margin in range(100_000, 1_000_000, 50_000):  # until Redis fills part-way through
        client.delete(producer.keys.jobs)
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + margin)
        try:
            producer.submit_many(jobs, chunk=250)
        except RedisCommandError as exc:
            in_redis = stream_ids(client, producer.keys)
            if in_redis:
                assert exc.submitted == in_redis
                return
        finally:
            client.config_set("maxmemory", 0)
    pytest.fail("no maxmemory margin let some batches of the chunk in and refused the rest")
