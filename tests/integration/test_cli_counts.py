"""Counts in the CLI's messages agree with their noun: `1 dead letter`, `2 dead letters`,
`submitted 1 job` (they said `1 dead letters` and `submitted 1 jobs`)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fleetscale.cli import main
from fleetscale.cli.explain import render as render_decision
from fleetscale.cli.status import render as render_status
from fleetscale.config import RedisSettings
from fleetscale.keys import FleetKeys
from fleetscale.producer import Producer
from fleetscale.status import read_status
from fleetscale.store import Client
from fleetscale.words import counted
from tests.integration.test_dlq_replay import add_letters


def test_counted_makes_the_noun_plural_unless_the_count_is_one() -> None:
    assert [counted(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
    assert counted(1, "dead letter") == "1 dead letter"
    assert counted(3, "entry", "entries") == "3 entries"


def test_dlq_list_replay_and_purge_count_one_letter_in_the_singular(
    fleet: str, client: Client, keys: FleetKeys, redis_settings: RedisSettings
) -> None:
    def dlq(*args: str) -> tuple[str, str]:
        result = CliRunner().invoke(main, ["dlq", fleet, *args, "--redis-url", redis_settings.url])
        assert result.exit_code == 0, result.output
        return result.stdout, result.stderr

    add_letters(client, keys, 1)
    assert dlq("list")[1] == "1 dead letter\n"
    assert dlq("replay")[0] == "replayed 1 dead letter\n"
    add_letters(client, keys, 2)
    assert dlq("list", "--limit", "1")[1] == "1 of 2 dead letters shown (--limit for more)\n"
    assert dlq("purge", "--yes")[0] == "purged 2 dead letters\n"
    add_letters(client, keys, 1)
    assert dlq("purge", "--yes")[0] == "purged 1 dead letter\n"


def test_submit_counts_one_job_in_the_singular(
    fleet: str, redis_settings: RedisSettings, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"task": "resize"}\n')
    argv = ["submit", fleet, "--file", str(jobs), "--redis-url", redis_settings.url]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"submitted 1 job to fleet {fleet!r}\n"


def test_status_and_explain_count_one_worker_and_one_sample_in_the_singular(
    fleet: str, redis_settings: RedisSettings, client: Client, keys: FleetKeys
) -> None:
    Producer(fleet, redis_settings.url).submit("never_run")
    status = read_status(client, keys, redis_settings.url)
    decision = {"desired": 1, "reason": "breach", "at_s": status["observed_at_s"]}
    text = render_status(status | {"wait_samples": 1, "last_decision": decision})
    assert "last decision 1 worker (breach" in text, text
    assert "1 weighted sample)" in text, text
    assert "2 → 1 worker  reason" in render_decision({"previous": 2, "desired": 1})
