"""`fleetscale submit` prints every job id it submitted on stdout, one a line, in the
order of the stream, for one job, --count and --file alike; the summary goes to stderr."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetscale.cli.submit import _IdPrinter, _submit_chunks
from fleetscale.codec import decode_job
from fleetscale.errors import RedisCommandError
from fleetscale.exitcode import ExitCode
from fleetscale.keys import FleetKeys
from fleetscale.store import Client
from tests.support.procs import REPO


def submit(redis_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    argv = [sys.executable, "-m", "fleetscale", "submit", *args, "--redis-url", redis_url]
    return subprocess.run(argv, cwd=REPO, env=env, input=stdin, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip


def stream_jobs(client: Client, fleet: str) -> list[tuple[str, str, list[object]]]:
    """(job id, task, args) of each job in the fleet's stream, oldest first."""
    entries = client.xrange(FleetKeys(fleet).jobs)
    jobs = [decode_job(fields, 1 << 20) for _, fields in entries]
    return [(job.job_id, job.task, list(job.args)) for job in jobs]


def test_count_prints_every_job_id_across_chunks(
    redis_url: str, client: Client, fleet: str
) -> None:
    result = submit(redis_url, fleet, "resize", "--args", '["img-1"]', "--count", "2500")
    printed = result.stdout.splitlines()
    assert printed == [job_id for job_id, _, _ in stream_jobs(client, fleet)]
    assert len(set(printed)) == 2500
    assert f"submitted 2500 jobs to fleet {fleet!r}" in result.stderr
    assert not set(printed) & set(result.stderr.split())


def test_file_prints_the_id_of_each_line_in_order(
    redis_url: str, client: Client, fleet: str, tmp_path: Path
) -> None:
    lines = [{"task": "resize", "args": [f"img-{n}"], "kwargs": {}} for n in range(3)]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = submit(redis_url, fleet, "--file", str(jobs_file))
    in_stream = stream_jobs(client, fleet)
    assert [(task, args) for _, task, args in in_stream] == [
        ("resize", [f"img-{n}"]) for n in range(3)
    ]
    assert result.stdout.splitlines() == [job_id for job_id, _, _ in in_stream]


def test_stdin_file_and_a_single_job_print_their_ids(
    redis_url: str, client: Client, fleet: str
) -> None:
    piped = submit(redis_url, fleet, "--file", "-", stdin='{"task": "mail.send"}\n')
    single = submit(redis_url, fleet, "resize", "--job-id", "img-9@64")
    assert piped.stdout.splitlines() + single.stdout.splitlines() == [
        job_id for job_id, _, _ in stream_jobs(client, fleet)
    ]
    assert single.stdout == "img-9@64\n"


def test_a_refusal_part_way_says_how_many_jobs_went_in_and_that_their_ids_are_on_stdout(
    redis_url: str, client: Client, fleet: str
) -> None:
    # Chunks of 1000 jobs: the first two go in (backlog 0, then 1000), the third is refused.
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    argv = [sys.executable, "-m", "fleetscale", "submit", fleet, "resize", "--count", "2500",
            "--max-backlog", "1500", "--redis-url", redis_url]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                            check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stdout.splitlines() == [job_id for job_id, _, _ in stream_jobs(client, fleet)]
    assert len(result.stdout.splitlines()) == 2000
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("fleetscale: error: fleet backlog 2000 is at or above"), error
    assert "2000 of 2500 jobs were submitted before this (their ids are on stdout)" in error, error
    assert "`submitted`" not in error and "first 0" not in error, error


def submit_with_stderr_on_a_terminal(redis_url: str, *args: str) -> tuple[str, str]:
    """Run `submit` with stdout piped and stderr on a pseudo-terminal: (stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    argv = [sys.executable, "-m", "fleetscale", "submit", *args, "--redis-url", redis_url]
    leader, follower = os.openpty()
    with subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=follower,
                          text=True) as proc:  # fmt: skip
        os.close(follower)
        screen = b""
        with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
            while chunk := os.read(leader, 4096):
                screen += chunk
        stdout, _ = proc.communicate(timeout=60)
    os.close(leader)
    return stdout, screen.decode()


def test_the_progress_bar_is_drawn_only_where_stderr_is_a_terminal(
    redis_url: str, fleet: str
) -> None:
    piped = submit(redis_url, fleet, "resize", "--count", "3")
    assert piped.stderr.splitlines() == [f"submitted 3 jobs to fleet {fleet!r}"]
    stdout, screen = submit_with_stderr_on_a_terminal(redis_url, fleet, "resize", "--count", "3")
    assert len(stdout.splitlines()) == 3
    assert "submitting" in screen and "100%" in screen, screen


class RefusedPartWay:
    """A producer whose second chunk is refused after its first batch went in."""

    def __init__(self) -> None:
        self.calls = 0

    def submit_many(self, jobs: list[object], **_: object) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            return [f"a{n}" for n in range(len(jobs))]
        error = RedisCommandError("Redis at redis://h:6379/0 is out of memory")
        error.submitted = ["b0", "b1"]
        raise error


def test_a_chunk_refused_after_some_of_its_batches_prints_their_ids_and_counts_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    jobs = iter([("resize", (), {})] * 1500)
    with pytest.raises(SystemExit) as stopped:
        _submit_chunks(RefusedPartWay(), jobs, 1500, 0.0, _IdPrinter())  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert stopped.value.code == ExitCode.FAILURE
    assert out.splitlines() == [f"a{n}" for n in range(1000)] + ["b0", "b1"]
    assert "1002 of 1500 jobs were submitted before this" in err, err


def test_a_reader_that_closes_stdout_part_way_leaves_every_job_submitted(
    redis_url: str, client: Client, fleet: str
) -> None:
    # `submit … --count 20000 | head -1` stopped at the first closed-pipe write and exited
    # 0 in silence, with 2,000 of the 20,000 jobs in: the reader went, the jobs are what
    # was asked for.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "FLEETSCALE_REDIS_URL"}
    argv = [sys.executable, "-m", "fleetscale", "submit", fleet, "work", "--count", "2500",
            "--redis-url", redis_url]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO, env=env, stdout=write_end, stderr=subprocess.PIPE,
                            text=True, timeout=60, check=False)  # fmt: skip
    os.close(write_end)
    assert result.returncode == ExitCode.OK, result.stderr
    assert client.xlen(FleetKeys(fleet).jobs) == 2500
    assert "submitted 2500 jobs" in result.stderr and "stdout was closed" in result.stderr
