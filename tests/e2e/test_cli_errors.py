"""Every command explains itself, and every error a user can cause is one line and a
named exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
from click.testing import CliRunner

from fleetscale import Producer
from fleetscale.cli import main
from fleetscale.cli.options import exit_code_for
from fleetscale.codec import Job, encode_job
from fleetscale.config import RedisSettings
from fleetscale.embedded import EmbeddedRedis
from fleetscale.errors import RedisCommandError
from fleetscale.exitcode import ExitCode
from fleetscale.keys import JOB_FIELD, FleetKeys
from fleetscale.store import Client
from tests.support.procs import REPO, Processes, wait_until


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
    return found


@pytest.mark.parametrize("path", every_command(main), ids=" ".join)
def test_every_command_help_has_an_example(path: tuple[str, ...]) -> None:
    args = [*path, "--help"]
    if path[0] in ("dlq", "policy") and len(path) > 1:
        args = [path[0], "media", *path[1:], "--help"]
    result = CliRunner().invoke(main, args, prog_name="fleetscale")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`fleetscale {' '.join(path)} --help` shows no example"


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"} | (env or {})
    argv = [sys.executable, "-m", "fleetscale", *args]
    return subprocess.run(argv, cwd=REPO, env=full_env, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def assert_one_line(result: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, f"one line, not {len(lines)}: {result.stderr}"
    assert lines[0].startswith("fleetscale: error: "), lines[0]
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("worker", "no_such_module:app"), ("cannot import", "no_such_module")),
        (("worker", "tests.apps.ledger"), ("module:attribute",)),
        (("worker", "tests.apps.ledger:nothing"), ("names nothing",)),
        (("controller", "no_such_module:app"), ("--fleet",)),
    ],
    ids=["module missing", "no attribute given", "attribute missing", "controller app"],
)
def test_a_bad_app_path_is_one_line_and_a_usage_exit(
    args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    assert_one_line(run(*args), ExitCode.USAGE, *words)


@pytest.mark.parametrize(
    "args",
    [("worker", "tests.apps.ledger:app", "--min-idle", "5x"),
     ("demo", "--duration", "soon"),
     ("controller", "tests.apps.ledger:app", "--target-p99", "-1s"),
     ("status", "demo", "--window", "1d")],
    ids=["worker --min-idle", "demo --duration", "controller --target-p99", "status --window"],
)  # fmt: skip
def test_a_bad_duration_is_one_line_and_a_usage_exit(args: tuple[str, ...]) -> None:
    assert_one_line(run(*args), ExitCode.USAGE, "bad duration", "--help")


@pytest.mark.parametrize(
    "args",
    [("status", "media"), ("worker", "tests.apps.ledger:app"), ("submit", "media", "resize"),
     ("policy", "media", "show"), ("dlq", "media", "list")],
    ids=["status", "worker", "submit", "policy", "dlq"],
)  # fmt: skip
def test_an_unreachable_redis_is_one_line_and_exit_3(args: tuple[str, ...]) -> None:
    result = run(*args, "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.REDIS_UNREACHABLE, "unreachable", "redis://127.0.0.1:1/0")


def test_a_wrong_password_is_one_line_and_a_usage_exit_that_never_shows_the_password(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(tmp_path / "redis", extra_args=("--requirepass", "right-secret")) as server:
        url = f"redis://:wrong-secret@127.0.0.1:{server.port}/0"
        result = run("status", "media", "--redis-url", url)
    assert_one_line(result, ExitCode.USAGE, "refused access", "***")
    assert "wrong-secret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "args",
    [("status", "no-such-fleet"), ("explain", "no-such-fleet"),
     ("dlq", "no-such-fleet", "list", "--json"), ("dlq", "no-such-fleet", "replay"),
     ("dlq", "no-such-fleet", "purge", "--yes"), ("policy", "no-such-fleet", "show")],
    ids=["status", "explain", "dlq list", "dlq replay", "dlq purge", "policy show"],
)  # fmt: skip
def test_an_unknown_fleet_is_one_line_and_a_usage_exit(
    redis_url: str, args: tuple[str, ...]
) -> None:
    # explain and dlq once answered a mistyped fleet with "0 dead letters" and exit 0,
    # policy show with the defaults as if they were its policy.
    result = run(*args, "--redis-url", redis_url)
    assert_one_line(result, ExitCode.USAGE, "unknown fleet", "no-such-fleet")
    assert result.stdout == ""


def test_a_policy_set_that_creates_a_fleet_warns_of_a_likely_typo(
    fleet: str, redis_url: str
) -> None:
    refused = run("policy", fleet, "set", "no_such_key=1", "--redis-url", redis_url)
    assert_one_line(refused, ExitCode.USAGE, "unknown policy key")  # nothing created
    first = run("policy", fleet, "set", "min=1", "--redis-url", redis_url)
    again = run("policy", fleet, "set", "min=2", "--redis-url", redis_url)
    assert (first.returncode, again.returncode) == (ExitCode.OK, ExitCode.OK)
    assert "warning" in first.stderr and "check the fleet name" in first.stderr, first.stderr
    assert again.stderr == "", "the fleet exists now"


def test_an_unknown_command_or_option_is_one_line_and_a_usage_exit() -> None:
    assert_one_line(run("stauts"), ExitCode.USAGE, "No such command", "--help")
    assert_one_line(run("status", "media", "--wtach"), ExitCode.USAGE, "--wtach", "--help")


@pytest.mark.parametrize(
    ("args", "call"),
    [(("dlq", "list"), "fleetscale dlq FLEET list"),
     (("dlq", "list", "--json"), "fleetscale dlq FLEET list"),
     (("dlq",), "fleetscale dlq FLEET {list|replay|purge}"),
     (("policy", "set", "max=3"), "fleetscale policy FLEET set"),
     (("policy",), "fleetscale policy FLEET {show|set}")],
    ids=["dlq list", "dlq list --json", "dlq", "policy set", "policy"],
)  # fmt: skip
def test_a_group_called_without_its_fleet_says_the_fleet_is_missing_and_how_to_call_it(
    args: tuple[str, ...], call: str
) -> None:
    # Click took the command's name for the fleet: "Missing command.", "No such option
    # '--json'", or the whole help printed as the error.
    assert_one_line(run(*args), ExitCode.USAGE, "missing FLEET", call)


@pytest.mark.parametrize(
    ("group", "commands"), [("dlq", "{list|replay|purge}"), ("policy", "{show|set}")]
)
def test_a_group_called_with_its_fleet_but_no_command_names_the_commands(
    group: str, commands: str
) -> None:
    # It said click's bare "Missing command."
    result = run(group, "media")
    assert_one_line(result, ExitCode.USAGE, "missing the command", f"{group} media {commands}")


def test_a_bad_dead_letter_id_is_one_line_and_a_usage_exit(redis_url: str) -> None:
    result = run("dlq", "media", "replay", "1700000000000-0", "foo", "--redis-url", redis_url)
    assert_one_line(result, ExitCode.USAGE, "'foo'", "<ms>-<seq>")
    assert "replayed" not in result.stdout, "nothing is replayed when an id is bad"


def test_unbalanced_worker_args_are_one_line_and_a_usage_exit_before_connecting() -> None:
    result = run(
        "controller", "tests.apps.ledger:app", "--worker-args", '--min-idle "10s',
        "--redis-url", "redis://127.0.0.1:1/0",
    )  # fmt: skip
    assert_one_line(result, ExitCode.USAGE, "--worker-args", "No closing quotation")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--service-cv", "nan"), ("--service-cv", "inf"), ("--service-cv", "-inf"),
     ("--service-cv", "1e200"), ("--service-time", "nan"), ("--target-p99", "inf"),
     ("--startup", "nan"), ("--period", "inf")],
)  # fmt: skip
def test_a_non_finite_simulate_number_is_one_line_and_a_usage_exit(option: str, value: str) -> None:
    assert_one_line(run("simulate", "--trace", "step", option, value), ExitCode.USAGE, option)


@pytest.mark.parametrize(
    "command",
    [("simulate", "--trace", "step"), ("demo", "--duration", "10s")],
    ids=["simulate", "demo"],
)
@pytest.mark.parametrize("plot", ["missing/x.png", ""], ids=["missing directory", "no file name"])
def test_a_plot_path_that_cannot_be_written_is_one_line_and_a_usage_exit_before_running(
    tmp_path: Path, command: tuple[str, ...], plot: str
) -> None:
    result = run(*command, "--plot", str(tmp_path / plot) if plot else plot)
    assert_one_line(result, ExitCode.USAGE, "--plot")
    assert result.stdout == "", "the run must not start"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "command",
    [("simulate", "--trace", "step"), ("demo", "--duration", "10s")],
    ids=["simulate", "demo"],
)
def test_a_plot_without_matplotlib_is_one_line_and_a_usage_exit_before_running(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # A matplotlib that cannot be imported stands in for the missing `plot` extra.
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('not here')\n")
    result = run(*command, "--plot", str(tmp_path / "x.png"), env={"PYTHONPATH": str(tmp_path)})
    assert_one_line(result, ExitCode.USAGE, "needs matplotlib", "fleetscale[plot]")
    assert result.stdout == "", "the run must not start"


def test_a_database_number_redis_does_not_have_is_one_line_and_a_usage_exit(
    redis_url: str,
) -> None:
    url = urlsplit(redis_url)._replace(path="/99").geturl()
    assert_one_line(run("status", "media", "--redis-url", url), ExitCode.USAGE, "DB index", "/99")


def test_other_refused_commands_stay_unexpected_failures() -> None:
    refused = RedisCommandError("Redis at redis://h/0 refused a command: WRONGTYPE Operation")
    assert exit_code_for(refused) == ExitCode.FAILURE


def test_ctrl_c_ends_status_watch_quietly_with_exit_0(
    procs: Processes, fleet: str, redis_settings: RedisSettings
) -> None:
    Producer(fleet, redis_settings.url).submit("work")
    watch = procs.fleetscale(
        "status", fleet, "--watch", "--interval", "100ms", "--redis-url", redis_settings.url
    )
    wait_until(lambda: watch.output().count(f"fleet {fleet}") >= 2, what="two refreshes")
    watch.signal(signal.SIGINT)
    assert watch.wait(timeout_s=10) == ExitCode.OK, watch.output()
    assert "aborted" not in watch.output() and "Traceback" not in watch.output()


@pytest.mark.parametrize(
    "args",
    [("status", "{fleet}", "--watch", "--interval", "100ms"), ("status", "{fleet}", "--json"),
     ("dlq", "{fleet}", "list", "--json"), ("explain", "{fleet}", "--json"),
     ("simulate", "--trace", "step")],
    ids=["status --watch", "status --json", "dlq list --json", "explain --json", "simulate"],
)  # fmt: skip
def test_a_closed_stdout_ends_a_command_quietly_with_exit_0(
    args: tuple[str, ...], fleet: str, redis_settings: RedisSettings
) -> None:
    # `status --watch | head -1` exited 1, an unexpected failure, once head had its line.
    Producer(fleet, redis_settings.url).submit("work")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line: every write fails
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    argv = [sys.executable, "-m", "fleetscale", *(a.format(fleet=fleet) for a in args)]
    if args[0] != "simulate":
        argv += ["--redis-url", redis_settings.url]
    result = subprocess.run(argv, cwd=REPO, env=env, stdout=write_end, stderr=subprocess.PIPE,
                            text=True, timeout=60, check=False)  # fmt: skip
    os.close(write_end)
    assert (result.returncode, result.stderr) == (ExitCode.OK, "")


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [("--window", "0", ("1s", "15m")), ("--window", "1h", ("1s", "15m")),
     ("--interval", "0", ("100ms", "24h")), ("--interval", "1e12", ("100ms", "24h"))],
)  # fmt: skip
def test_a_status_duration_out_of_range_is_one_line_and_a_usage_exit_before_connecting(
    option: str, value: str, words: tuple[str, ...]
) -> None:
    # A huge --window once read every second's telemetry key of it (--window 1e9: 24 GB,
    # killed by the OOM killer); a huge --interval ended --watch in a traceback.
    result = run(
        "status", "media", "--watch", option, value, "--redis-url", "redis://127.0.0.1:1/0"
    )
    assert_one_line(result, ExitCode.USAGE, option, *words)


@pytest.mark.parametrize(
    "args",
    [("status", "media"), ("submit", "media", "resize"), ("explain", "media"),
     ("policy", "media", "show"), ("dlq", "media", "list")],
    ids=["status", "submit", "explain", "policy", "dlq"],
)  # fmt: skip
def test_an_empty_redis_url_is_one_line_and_a_usage_exit_not_the_default(
    args: tuple[str, ...],
) -> None:
    # `--redis-url "$UNSET_VARIABLE"` once fell back to the environment or the default URL.
    result = run(*args, "--redis-url", "", env={"FLEETSCALE_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert_one_line(result, ExitCode.USAGE, "--redis-url", "empty")


def test_dlq_purge_without_yes_and_without_a_terminal_is_one_line_naming_yes(
    fleet: str, redis_url: str, client: Client
) -> None:
    # It once printed its question, then "fleetscale: aborted" with exit 1 (in a cron job).
    dlq = FleetKeys(fleet).dlq
    client.xadd(dlq, {b"reason": b"failed"})
    result = run("dlq", fleet, "purge", "--redis-url", redis_url, stdin="")
    assert_one_line(result, ExitCode.USAGE, "--yes", "not a terminal")
    assert client.xlen(dlq) == 1, "nothing is purged"
    declined = run("dlq", fleet, "purge", "--redis-url", redis_url, stdin="n\n")
    assert declined.returncode == ExitCode.FAILURE and "aborted" in declined.stderr
    confirmed = run("dlq", fleet, "purge", "--redis-url", redis_url, stdin="y\n")
    assert confirmed.returncode == ExitCode.OK and "purged 1 dead letter\n" in confirmed.stdout


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [("--args", "[NaN]", "NaN is not a JSON number"),
     ("--kwargs", '{"a": -Infinity}', "-Infinity is not a JSON number"),
     ("--args", "[1e999]", "1e999 is too large for a float")],
)  # fmt: skip
def test_json_that_only_python_reads_is_one_line_and_a_usage_exit_before_connecting(
    flag: str, value: str, says: str
) -> None:
    # Python's parser reads these (as nan and inf); the task would have been handed them.
    result = run("submit", "media", "resize", flag, value, "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.USAGE, flag, says)


def test_a_jobs_file_line_with_json_only_python_reads_is_refused_naming_the_line(
    tmp_path: Path,
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"task": "resize", "args": [1]}\n{"task": "resize", "args": [NaN]}\n')
    result = run("submit", "media", "--file", str(jobs), "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.USAGE, "line 2", "NaN is not a JSON number")


@pytest.mark.parametrize(
    ("line", "says"),
    [('{"task": "resize", "kwarg": {"width": 640}}', "'kwarg'"),
     ('{"task": "resize", "job_id": "img-1"}', "'job_id'")],
    ids=["misspelt kwargs", "job_id"],
)  # fmt: skip
def test_a_jobs_file_line_with_a_key_it_would_ignore_is_refused_naming_the_line(
    tmp_path: Path, line: str, says: str
) -> None:
    # Such a job went in without its keyword arguments, or under a fresh id: no error.
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"task": "resize", "args": [1]}\n' + line + "\n")
    result = run("submit", "media", "--file", str(jobs), "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.USAGE, "line 2", says)


def test_a_jobs_file_that_is_not_utf8_is_one_line_naming_the_line(tmp_path: Path) -> None:
    # It was a UnicodeDecodeError traceback and exit 1.
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_bytes(b'{"task": "resize"}\n{"task": "r\xe9size"}\n')
    result = run("submit", "media", "--file", str(jobs), "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.USAGE, "line 2", "UTF-8")


@pytest.mark.parametrize(
    "flags",
    [("--args", "[1]"), ("--kwargs", "{}"), ("--count", "3")],
    ids=["args", "kwargs", "count"],
)
def test_job_flags_given_with_a_jobs_file_are_refused_not_ignored(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"task": "resize", "args": [1]}\n')
    argv = ("submit", "media", "--file", str(jobs), *flags, "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(run(*argv), ExitCode.USAGE, flags[0], "--file")


def test_a_submit_timeout_without_max_backlog_is_refused_not_ignored() -> None:
    # --timeout only waits for room under --max-backlog; alone it did nothing.
    result = run("submit", "media", "resize", "--timeout", "5s",
                 "--redis-url", "redis://127.0.0.1:1/0")  # fmt: skip
    assert_one_line(result, ExitCode.USAGE, "--timeout", "--max-backlog")


UNREACHABLE = ("--redis-url", "redis://127.0.0.1:1/0")
"""A Redis URL nothing listens on: a command that gets as far as connecting exits 3."""


@pytest.mark.parametrize(
    ("args", "words"),
    [(("--duration", "25h"), ("--duration", "24h")),
     (("--trace", "step", "--duration", "2m"), ("--duration", "--trace")),
     (("--target-p99", "0"), ("--target-p99", "1ms to 10m")),
     (("--target-p99", "20m"), ("--target-p99", "1ms to 10m")),
     (("--plot", "demo.svg"), ("--plot", ".png"))],
    ids=["duration past a day", "duration with a trace", "zero target", "target past 10m",
         "plot not png"],
)  # fmt: skip
def test_a_bad_demo_option_is_one_line_and_a_usage_exit_before_starting(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    # A huge --duration filled memory with the load's arrival times and ignored SIGTERM;
    # a bad target failed in the demo's controller (two lines, exit 1); a plot name
    # matplotlib cannot write failed after the run; --duration beside --trace was ignored.
    args = tuple(str(tmp_path / a) if a.endswith(".svg") else a for a in args)
    result = run("demo", *args, *UNREACHABLE)
    assert_one_line(result, ExitCode.USAGE, *words)
    assert result.stdout == "", "the demo must not start"


def test_a_submit_count_that_would_fill_redis_is_refused_before_connecting() -> None:
    # '--count 99999999999999999999' put 4 million jobs in Redis in a minute before it
    # was killed.
    result = run("submit", "media", "resize", "--count", "99999999999999999999",
                 "--redis-url", "redis://127.0.0.1:1/0")  # fmt: skip
    assert_one_line(result, ExitCode.USAGE, "--count", "10000000")


def test_status_interval_without_watch_is_refused_before_connecting() -> None:
    # It was ignored: one reading, no refresh.
    result = run("status", "media", "--interval", "1s", "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.USAGE, "--interval", "--watch")


def test_a_policy_key_given_twice_is_refused_before_connecting() -> None:
    # The last one was kept in silence.
    result = run("policy", "media", "set", "max=3", "max=4", "--redis-url", "redis://127.0.0.1:1/0")
    assert_one_line(result, ExitCode.USAGE, "max is given twice")


@pytest.mark.parametrize("command", [("purge", "--yes"), ("replay",)], ids=["purge", "replay"])
def test_dlq_ids_that_are_not_dead_letters_are_named_with_a_usage_exit_after_the_others(
    fleet: str, redis_url: str, client: Client, command: tuple[str, ...]
) -> None:
    # purge said "purged 0 dead letters" and exit 0; replay "skipped 1-0: no such dead
    # letter" and exit 0: a mistyped id looked done.
    keys = FleetKeys(fleet)
    job = encode_job(Job("job-1", "work"), 1 << 20)
    present = client.xadd(keys.dlq, {JOB_FIELD: job, b"reason": b"failed"}).decode()
    result = run("dlq", fleet, *command, "1-0", present, "2-0", "1-0", "--redis-url", redis_url)
    assert_one_line(result, ExitCode.USAGE, f"not dead letters of fleet {fleet!r}: 1-0, 2-0")
    done = {"purge": "purged", "replay": "replayed"}[command[0]]
    assert result.stdout == f"{done} 1 dead letter\n"
    assert client.xlen(keys.dlq) == 0, "the letter that is there is acted on"


@pytest.mark.parametrize(
    ("bad", "says"),
    [('{"task": ""}', "bad task name ''"),
     ('{"task": "resize", "args": [99999999999999999999999]}', "cannot be encoded"),
     ('{"task": "resize", "args": ["' + "x" * (1 << 20) + '"]}', "above the limit of 1048576")],
    ids=["empty task name", "int msgpack cannot hold", "too large"],
)  # fmt: skip
def test_a_jobs_file_line_a_producer_would_refuse_is_named_before_any_job_goes_in(
    tmp_path: Path, fleet: str, redis_url: str, *, client: Client, bad: str, says: str
) -> None:
    # The error came from the submission, without a line number, after the chunks
    # before the bad line had gone in (1000 of them here).
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"task": "resize", "args": [1]}\n' * 1500 + bad + "\n")
    result = run("submit", fleet, "--file", str(jobs), "--redis-url", redis_url)
    assert_one_line(result, ExitCode.USAGE, "line 1501: ", says)
    assert result.stdout == "" and not client.exists(FleetKeys(fleet).jobs), "nothing went in"


APP = "tests.apps.ledger:app"

ABSURD = [
    (("worker", APP, "--sample-every", "99999999999"), "--sample-every", "1000000"),
    (("worker", APP, "--min-idle", "1e12"), "--min-idle", "from 1s to 24h"),
    (("worker", APP, "--prefetch-window", "1e12"), "--prefetch-window", "from 0s to 24h"),
    (("worker", APP, "--max-payload-bytes", "99999999999999"), "--max-payload-bytes", "536870912"),
    (("controller", APP, "--lease-ttl", "1e12"), "--lease-ttl", "from 200ms to 1h"),
    (("controller", APP, "--tick", "1e12", "--lease-ttl", "1h"), "--tick", "from 100ms to 1m"),
    (("controller", APP, "--stop-grace", "1e12"), "--stop-grace", "from 0s to 24h"),
    (("controller", APP, "--capacity", "999999"), "--capacity", "10000"),
    (("controller", APP, "--warm", "999999"), "--warm", "10000"),
    (("submit", "media", "resize", "--delay", "1e20"), "--delay", "from 0s to 8760h"),
    (("submit", "media", "resize", "--max-backlog", "1", "--timeout", "1e300"), "--timeout",
     "from 0s to 1h"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "option", "bound"), ABSURD, ids=[f"{a[0]} {o}" for a, o, _ in ABSURD]
)
def test_an_absurd_value_is_one_line_naming_the_option_and_its_range_before_connecting(
    args: tuple[str, ...], option: str, bound: str
) -> None:
    # They were taken: a 1e12 s lease, 1 sample in 1e11, a submit waiting 1e300 s for room.
    assert_one_line(run(*args, *UNREACHABLE), ExitCode.USAGE, option, bound)


@pytest.mark.parametrize(
    ("args", "option", "bound"),
    [(("--service-time", "1e12"), "--service-time", "from 0.1ms to 1h"),
     (("--startup", "1e12"), "--startup", "from 0s to 1h")],
)  # fmt: skip
def test_an_absurd_simulate_duration_is_one_line_naming_the_option_and_its_range(
    args: tuple[str, ...], option: str, bound: str
) -> None:
    # A simulation of 1e12 s jobs ran and printed its meaningless summary, exit 0.
    result = run("simulate", "--trace", "step", *args)
    assert_one_line(result, ExitCode.USAGE, option, bound)
    assert result.stdout == ""


LEAKS = [
    (("worker", APP, "--min-idle", "0", *UNREACHABLE), ("--min-idle",), "min_idle_s"),
    (("controller", APP, "--target-p99", "0", *UNREACHABLE), ("--target-p99",), "target_p99_s"),
    (("controller", APP, "--min", "5", "--max", "2", *UNREACHABLE), ("--min", "--max 2"), "min="),
    (("simulate", "--trace", "step", "--target-p99", "1h"), ("--target-p99",), "target_p99_s"),
    (("simulate", "--trace", "step", "--min", "5", "--max", "2"), ("--min", "--max 2"), "min="),
    (("simulate", "--trace", "step", "--min", "-1"), ("--min",), "min="),
    (("demo", "--target-p99", "0", *UNREACHABLE), ("--target-p99",), "target_p99_s"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "words", "internal"), LEAKS, ids=[f"{a[0]} {w[0]} ({i})" for a, w, i in LEAKS]
)
def test_a_refused_value_names_the_option_typed_not_a_settings_field(
    args: tuple[str, ...], words: tuple[str, ...], internal: str
) -> None:
    # They said "min_idle_s must be > 0", "target_p99_s=0.0 must be > 0", "min=5 max=2".
    result = run(*args)
    assert_one_line(result, ExitCode.USAGE, *words)
    assert internal not in result.stderr, result.stderr


BOUNDED = [
    ("worker", "--min-idle", "from 1s to 24h"),
    ("worker", "--prefetch-window", "from 0s to 24h"),
    ("worker", "--sample-every", "0<=x<=1000000"),
    ("controller", "--tick", "from 100ms to 1m"),
    ("controller", "--lease-ttl", "from 200ms to 1h"),
    ("controller", "--capacity", "0<=x<=10000"),
    ("controller", "--stop-grace", "from 0s to 24h"),
    ("controller", "--target-p99", "from 1ms to 10m"),
    ("submit", "--delay", "from 0s to 8760h"),
    ("submit", "--timeout", "from 0s to 1h"),
    ("simulate", "--target-p99", "from 1ms to 10m"),
    ("simulate", "--service-time", "from 0.1ms to 1h"),
    ("simulate", "--startup", "from 0s to 1h"),
    ("demo", "--target-p99", "from 1ms to 10m"),
]


@pytest.mark.parametrize(
    ("command", "option", "bound"), BOUNDED, ids=[f"{c} {o}" for c, o, _ in BOUNDED]
)
def test_help_shows_the_range_of_a_bounded_option(command: str, option: str, bound: str) -> None:
    shown = CliRunner().invoke(main, [command, "--help"], prog_name="fleetscale").output
    entry = " ".join(shown.split(f"  {option} ", 1)[1].split("\n  --", 1)[0].split())
    assert bound in entry, entry


@pytest.mark.parametrize("name", ["missing.csv", "stepp"])
def test_a_trace_neither_a_file_nor_shipped_says_the_file_does_not_exist_and_lists_the_shipped(
    name: str,
) -> None:
    # "unknown trace 'missing.csv'" for a path that does not exist.
    result = run("simulate", "--trace", name)
    assert_one_line(
        result, ExitCode.USAGE, repr(name), "no file of that name exists", "step, spike"
    )
