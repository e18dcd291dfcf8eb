"""`dlq replay` at its edges: a broken jobs key, an interruption, a vanished group."""

from __future__ import annotations

import pytest

from fleetscale.config import RedisSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.errors import RedisCommandError
from fleetscale.keys import FleetKeys
from fleetscale.store import Client
from tests.integration.test_dlq_replay import add_letters


def test_a_replay_into_a_jobs_key_of_another_type_keeps_the_letter(
    client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    # The script deleted the letter, then its XADD failed: the job was in neither key.
    add_letters(client, keys, 1)
    client.set(keys.jobs, "oops")
    with pytest.raises(RedisCommandError):
        DeadLetters(client, keys, redis_settings.url).replay()
    assert client.xlen(keys.dlq) == 1
