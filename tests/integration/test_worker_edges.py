"""The worker at its edges, against a real Redis: the largest batches it may take."""

from __future__ import annotations

from fleetscale.config import RedisSettings
from fleetscale.jobstream import DeadLetter, JobStream, Settlement
from fleetscale.keys import GROUP, FleetKeys
from fleetscale.producer import Producer
from fleetscale.store import Client


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
