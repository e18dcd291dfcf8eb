"""`dlq replay` at its edges: a broken jobs key, an interruption, a vanished group."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fleetscale.codec import decode_job
from fleetscale.config import RedisSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import RedisCommandError
from fleetscale.exitcode import ExitCode
from fleetscale.keys import FleetKeys
from fleetscale.store import Client, connect
from tests.integration.test_dlq_replay import add_letters
from tests.support.procs import REPO, wait_until


def test_a_replay_into_a_jobs_key_of_another_type_keeps_the_letter(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    # The script deleted the letter, then its XADD failed: the job was in neither key.
    add_letters(client, keys, 1)
    client.set(keys.jobs, "oops")
    with pytest.raises(RedisCommandError):
        DeadLetters(client, keys, redis_settings.url).replay()
    assert client.xlen(keys.dlq) == 1


@pytest.mark.timeout(120)
def test_a_replay_whose_redis_is_killed_loses_and_duplicates_no_letter(
    private_redis: EmbeddedRedis,
) -> None:
    keys = FleetKeys("killed")
    client = connect(RedisSettings(url=private_redis.url))
    total = 20_000
    for _ in range(total // 1000):
        add_letters(client, keys, 1000)
    argv = [sys.executable, "-m", "fleetscale", "dlq", keys.fleet, "replay"]
    replay = subprocess.Popen(
        [*argv, "--redis-url", private_redis.url], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    wait_until(lambda: client.exists(keys.jobs) and client.xlen(keys.jobs) >= 500)
    private_redis.kill()  # SIGKILL; AOF everysec keeps what it had acknowledged
    _, stderr = replay.communicate(timeout=60)
    assert replay.returncode == ExitCode.REDIS_UNREACHABLE, stderr
    assert "before stopping" in stderr, stderr
    private_redis.start()
    client = connect(RedisSettings(url=private_redis.url))
    jobs = [decode_job(f, 1 << 20).job_id for _, f in client.xrange(keys.jobs)]
    assert len(jobs) == len(set(jobs)), "no letter replayed twice"
    assert len(jobs) + client.xlen(keys.dlq) == total, "every letter replayed or still there"
