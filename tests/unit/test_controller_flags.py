"""The controller refuses flags that would break the fleet, before it touches Redis."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fleetscale.cli import main
from fleetscale.exitcode import ExitCode

APP = "tests.apps.ledger:app"
UNREACHABLE = "redis://127.0.0.1:1/0"  # a refusal must come before any connection


def controller(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["controller", APP, "--redis-url", UNREACHABLE, *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "host_id", ["", "   ", "web\n1", "web\t1", "a:b", "a#b"],
    ids=["empty", "blank", "newline", "tab", "colon", "hash"],
)  # fmt: skip
def test_a_host_id_that_would_garble_status_and_logs_is_refused(host_id: str) -> None:
    code, output = controller("--host-id", host_id)
    assert code == ExitCode.USAGE, output
    assert "--host-id" in output


@pytest.mark.parametrize(("tick", "lease"), [("1s", "1s"), ("4s", "5s")], ids=["equal", "tight"])
def test_a_lease_one_slow_tick_could_lose_is_refused(tick: str, lease: str) -> None:
    code, output = controller("--tick", tick, "--lease-ttl", lease)
    assert code == ExitCode.USAGE, output
    assert "--lease-ttl" in output and "--tick" in output


def test_names_with_spaces_or_accents_and_a_lease_of_two_ticks_pass_the_checks() -> None:
    code, output = controller("--host-id", "hôte 1", "--tick", "2s", "--lease-ttl", "4s")
    assert code == ExitCode.REDIS_UNREACHABLE, output


@pytest.mark.parametrize(
    ("words", "named"),
    [("--nosuch", "--nosuch"), ("--min-idle", "--min-idle"), ("10s", "10s"),
     ("--redis-url redis://other:6379/0", "--redis-url"), ("--redis-url=redis://x", "--redis-url"),
     ("--warm", "--warm"), ("--burst", "--burst"), ("--zygote", "--zygote"),
     ("--min-idle 1e12", "--min-idle"), ("--min-idle x", "--min-idle"),
     ("--max-batch 0", "--max-batch"), ("--sample-every -3", "--sample-every"),
     ("--log-level nope", "--log-level"), ("--max-payload-bytes=lots", "--max-payload-bytes"),
     ("--help", "--help")],
)  # fmt: skip
def test_worker_args_that_every_worker_would_refuse_or_the_controller_sets_are_refused(
    words: str, named: str
) -> None:
    # Accepted, '--nosuch' or '--min-idle 1e12' failed every worker's start (a back-off
    # for ever), and a '--redis-url' there sent the workers elsewhere than
    # --worker-redis-url, unseen.
    code, output = controller("--worker-args", words)
    assert code == ExitCode.USAGE, output
    assert "--worker-args" in output and named in output


def test_worker_args_that_a_worker_takes_pass_the_checks() -> None:
    code, output = controller("--worker-args", "--min-idle 10s --max-batch=64 --no-lease-renewal")
    assert code == ExitCode.REDIS_UNREACHABLE, output


def test_an_empty_worker_redis_url_is_refused_as_an_empty_redis_url_is() -> None:
    # Taken as unset, '' (an unset shell variable) sent the workers to the controller's Redis.
    code, output = controller("--worker-redis-url", "")
    assert code == ExitCode.USAGE, output
    assert "--worker-redis-url" in output and "empty" in output
