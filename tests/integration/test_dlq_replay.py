"""`dlq replay` without IDs replays every dead letter, not just the first chunk."""

from __future__ import annotations

import threading

from click.testing import CliRunner

from fleetscale.cli import main
from fleetscale.codec import Job, encode_job
from fleetscale.config import RedisSettings
from fleetscale.deadletters import REPLAY_CHUNK, DeadLetters, ReplayResult
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.store import Client


def add_letters(client: Client, keys: FleetKeys, count: int, *, good: bool = True) -> None:
    """Dead-letter `count` jobs (or undecodable payloads when not `good`)."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        payload = encode_job(Job(f"job-{i}", "work"), 1 << 20) if good else b"\xc1"
        pipe.xadd(keys.dlq, {JOB_FIELD: payload, b"reason": b"test"})
    pipe.execute()


def test_replay_without_ids_replays_every_letter_and_says_how_many(
    client: Client, keys: FleetKeys, fleet: str, redis_settings: RedisSettings
) -> None:
    total = 2 * REPLAY_CHUNK + 500
    add_letters(client, keys, total)
    args = ["dlq", fleet, "replay", "--redis-url", redis_settings.url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"replayed {total} dead letters" in result.stdout
    assert client.xlen(keys.dlq) == 0
    assert client.xlen(keys.jobs) == total


def test_replay_without_ids_moves_past_a_chunk_of_letters_it_cannot_replay(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    add_letters(client, keys, REPLAY_CHUNK, good=False)
    add_letters(client, keys, 5)
    result = DeadLetters(client, keys, redis_settings.url).replay()
    assert len(result.replayed) == 5
    assert len(result.skipped) == REPLAY_CHUNK
    assert client.xlen(keys.dlq) == REPLAY_CHUNK, "undecodable letters stay"


def test_two_replays_at_once_put_each_letter_back_once(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    add_letters(client, keys, 2000)
    results: list[ReplayResult] = []

    def replay() -> None:
        results.append(DeadLetters(client, keys, redis_settings.url).replay(chunk=100))

    threads = [threading.Thread(target=replay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert client.xlen(keys.jobs) == 2000, "every letter once, none twice"
    assert sum(len(r.replayed) for r in results) == 2000
    assert client.xlen(keys.dlq) == 0
