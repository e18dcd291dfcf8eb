"""`fleetscale dlq` list, replay and purge on what a real dead-letter stream may hold:
letters written by hand, many letters, letters arriving meanwhile, a key of another
type, an interruption."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from fleetscale.cli import dlq, main
from fleetscale.config import RedisSettings
from fleetscale.deadletters import DeadLetters
from fleetscale.exitcode import ExitCode
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.store import Client
from tests.integration.test_dlq_replay import add_letters
from tests.support.payloads import raw_job


def dlq_cli(fleet: str, settings: RedisSettings, *args: str, stdin: str | None = None) -> Result:
    """`fleetscale dlq FLEET ARGS… --redis-url …` through click's runner."""
    argv = ["dlq", fleet, *args, "--redis-url", settings.url]
    return CliRunner().invoke(main, argv, input=stdin)


def test_list_shows_letters_written_by_hand_without_a_traceback(
    fleet: str, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    # A non-integer attempts field raised ValueError out of `dlq list`: a traceback.
    client.xadd(keys.dlq, {JOB_FIELD: b"\xc1", b"attempts": b"three", b"at_ms": b""})
    client.xadd(keys.dlq, {JOB_FIELD: raw_job(id="j7", task="resize"), b"reason": b"moved"})
    result = dlq_cli(fleet, redis_settings, "list", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["count"] == 2
    first, second = body["entries"]
    assert (first["attempts"], first["at_ms"], first["job_id"]) == (0, 0, "")
    assert (second["job_id"], second["task"]) == ("j7", "resize"), "read from its job"


def test_list_says_how_many_it_left_out(
    fleet: str, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    add_letters(client, keys, 5)
    result = dlq_cli(fleet, redis_settings, "list", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    assert "2 of 5 dead letters shown" in result.stderr


def test_purge_keeps_letters_that_arrive_after_its_question(
    fleet: str,
    client: Client,
    keys: FleetKeys,
    redis_settings: RedisSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # purge deleted the whole key: a letter dead-lettered while the user read the
    # question was deleted unseen.
    add_letters(client, keys, 3)
    asked: list[str] = []

    def confirm(question: str, **_: Any) -> bool:
        asked.append(question)
        add_letters(client, keys, 1)
        return True

    monkeypatch.setattr(dlq.click, "confirm", confirm)
    result = dlq_cli(fleet, redis_settings, "purge")
    assert result.exit_code == 0, result.output
    assert "the 3 dead letters" in asked[0]
    assert "purged 3 dead letters" in result.stdout
    assert client.xlen(keys.dlq) == 1


def test_purge_of_given_ids_deletes_only_those(
    fleet: str, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    client.xadd(keys.dlq, {JOB_FIELD: b"\xc1", b"reason": b"cannot be replayed"})
    add_letters(client, keys, 2)
    (bad, *_) = DeadLetters(client, keys, redis_settings.url).list()
    result = dlq_cli(fleet, redis_settings, "purge", "--yes", bad.id)
    assert result.exit_code == 0, result.output
    assert "purged 1 dead letter\n" in result.stdout
    assert [e.reason for e in DeadLetters(client, keys, redis_settings.url).list()] == [
        "test",
        "test",
    ]


@pytest.mark.parametrize("command", [("list",), ("replay",), ("purge", "--yes")], ids=" ".join)
def test_a_dead_letter_key_of_another_type_is_named_and_left_alone(
    fleet: str,
    client: Client,
    keys: FleetKeys,
    redis_settings: RedisSettings,
    command: tuple[str, ...],
) -> None:
    # purge deleted such a key and then reported Redis's WRONGTYPE; every command said
    # only "refused a command: WRONGTYPE …".
    client.set(keys.dlq, "someone's value")
    result = dlq_cli(fleet, redis_settings, *command)
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert f"{keys.dlq} holds a string, not a stream" in result.stderr
    assert "RENAME" in result.stderr
    assert client.get(keys.dlq) == b"someone's value"
    assert DeadLetters(client, keys, redis_settings.url).count() == 0, "status goes on"


def test_an_interrupted_replay_says_how_far_it_got_and_loses_nothing(
    fleet: str,
    client: Client,
    keys: FleetKeys,
    redis_settings: RedisSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_letters(client, keys, 10)
    real_init = DeadLetters.__init__

    def init(self: DeadLetters, *args: Any) -> None:
        real_init(self, *args)
        script, calls = self._replay, [0]

        def cut_after_four(**kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > 4:
                raise redis.ConnectionError("connection reset")
            return script(**kwargs)

        self._replay = cut_after_four  # type: ignore[assignment]

    monkeypatch.setattr(DeadLetters, "__init__", init)
    result = dlq_cli(fleet, redis_settings, "replay")
    assert result.exit_code == ExitCode.REDIS_UNREACHABLE, result.output
    assert "replayed 4 dead letters before stopping" in result.stderr
    assert (client.xlen(keys.jobs), client.xlen(keys.dlq)) == (4, 6)


def test_replay_names_a_letter_without_a_job_field(
    fleet: str, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    client.xadd(keys.dlq, {b"reason": b"by hand"})
    result = dlq_cli(fleet, redis_settings, "replay")
    assert result.exit_code == 0, result.output
    assert "entry has no 'j' field" in result.stderr
    assert client.xlen(keys.dlq) == 1
