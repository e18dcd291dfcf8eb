"""`fleetscale submit FLEET TASK`: submit jobs from the shell."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import islice
from typing import Any, BinaryIO

import click

from fleetscale.cli.options import (
    duration_option,
    exit_code_for,
    fail,
    fleet_argument,
    logging_options,
    redis_settings,
    redis_url_option,
    reports_errors,
)
from fleetscale.cli.root import discard_stdout, main
from fleetscale.errors import ConfigurationError, FleetscaleError
from fleetscale.producer import JobSpec, Producer, parse_job_line, strict_json
from fleetscale.words import counted, noun

CHUNK = 1000
MAX_COUNT = 10_000_000
"""The most jobs one `--count` submits: a typo must not fill Redis."""
MAX_DELAY_S = 365 * 86_400.0
"""The longest `--delay`, a year: a queue, not a calendar."""


def _json_arg(value: str | None, name: str, kind: type) -> Any:
    if value is None:
        return kind()
    try:
        parsed = strict_json(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg})", param_hint=name) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=name)
    return parsed


def _file_jobs(stream: BinaryIO, max_payload_bytes: int) -> Iterator[JobSpec]:
    """The jobs of a JSON-lines file read as bytes, so a line that is not UTF-8 is named;
    every error names its line."""
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"line {number}: not UTF-8 text: save the file as UTF-8"
            ) from None
        if line.strip():
            yield parse_job_line(line, number, max_payload_bytes)


@main.command("submit")
@fleet_argument
@click.argument("task", required=False)
@click.option(
    "--args", "args_json", metavar="JSON", help="Positional arguments, e.g. '[\"img-1\"]'."
)
@click.option(
    "--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments, e.g. '{\"width\": 640}'."
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_COUNT),
    default=1,
    show_default=True,
    help=f"Submit the job this many times (fresh job ids), at most {MAX_COUNT:,} a call "
    "(a typo must not fill Redis).",
)
@click.option(
    "--file",
    "jobs_file",
    type=click.File("rb"),
    help='JSON lines, one job each: {"task": ..., "args": [...], "kwargs": {...}}; - for stdin.',
)
@click.option("--job-id", help="Your id for the job; resubmitting it is a no-op while it is known.")
@duration_option(
    "--delay",
    default="0",
    least_s=0,
    most_s=MAX_DELAY_S,
    help_text="Run no earlier than this from now",
)
@click.option(
    "--max-backlog", type=click.IntRange(min=1), help="Refuse when the backlog is at least this."
)
@duration_option(
    "--timeout",
    default="0",
    least_s=0,
    most_s=3600,
    help_text="With --max-backlog, wait this long for room",
)
@redis_url_option
@logging_options
@reports_errors
def submit_command(
    *,
    fleet: str,
    task: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    count: int,
    jobs_file: BinaryIO | None,
    job_id: str | None,
    delay: float,
    max_backlog: int | None,
    timeout: float,
    redis_url: str | None,
) -> None:
    """Submit jobs of TASK to FLEET, or the jobs in --file; print each job id on
    stdout, one per line, in submission order.

    The whole --file is read first: a bad line (not a job, or one a producer would
    refuse) is refused, naming its line number, before any job goes in.

    Many jobs (--count, --file) go in chunks of 1000 (a call each; more when large); ids are
    printed once Redis has taken it, so after an error stdout lists the jobs known to
    be in. A summary goes to stderr, and a progress bar too when stderr is a terminal
    and stdout is not.

    \b
    Examples:
      fleetscale submit media resize --args '["img-1"]' --kwargs '{"width": 640}'
      fleetscale submit media resize --args '["img-1"]' --count 10000 > ids
      fleetscale submit media --file jobs.jsonl
    """
    if (task is None) == (jobs_file is None):
        raise click.UsageError("give either TASK or --file")
    if (job_id or delay) and (jobs_file is not None or count > 1):
        raise click.UsageError("--job-id and --delay apply to a single job, not --count/--file")
    if jobs_file is not None and (args_json is not None or kwargs_json is not None or count > 1):
        raise click.UsageError("--args, --kwargs and --count apply to TASK, not --file")
    if timeout and max_backlog is None:
        raise click.UsageError("--timeout waits for room under --max-backlog: give both")
    settings = redis_settings(redis_url)
    with Producer(fleet, settings.url, max_backlog=max_backlog, redis=settings) as producer:
        if task is not None and count == 1:
            args = _json_arg(args_json, "--args", list)
            kwargs = _json_arg(kwargs_json, "--kwargs", dict)
            click.echo(producer.submit(task, args, kwargs, job_id=job_id, delay_s=delay,
                                       timeout_s=timeout))  # fmt: skip
            return
        if task is not None:
            args = _json_arg(args_json, "--args", list)
            spec = (task, args, _json_arg(kwargs_json, "--kwargs", dict))
            jobs: Iterator[JobSpec] = (spec for _ in range(count))
            total = count
        else:
            assert jobs_file is not None
            # Parse the whole file first: a bad line submits nothing.
            parsed = list(_file_jobs(jobs_file, producer.settings.max_payload_bytes))
            jobs, total = iter(parsed), len(parsed)
        printer = _IdPrinter()
        submitted = _submit_chunks(producer, jobs, total, timeout, printer)
    unprinted = f" (stdout was closed before {printer.unprinted} of their ids)"
    click.echo(f"submitted {counted(submitted, 'job')} to fleet {fleet!r}"
               + (unprinted if printer.unprinted else ""), err=True)  # fmt: skip


class _IdPrinter:
    """Prints job ids on stdout, one a line. Once its reader has gone (`| head -1`), the
    jobs still all go in: it prints no more and counts the ids it could not print."""

    def __init__(self) -> None:
        self.unprinted = 0

    def __call__(self, ids: list[str]) -> None:
        if not self.unprinted and ids:
            try:
                click.echo("\n".join(ids))
                return
            except BrokenPipeError:
                discard_stdout()
        self.unprinted += len(ids)


def _submit_chunks(
    producer: Producer,
    jobs: Iterator[JobSpec],
    total: int,
    timeout: float,
    print_ids: _IdPrinter,
) -> int:
    submitted = 0
    # On a terminal the ids scroll past: a bar on the same screen would be cut by them.
    # Where stderr is no terminal (a log, a pipe) the bar would only leave its label.
    progress = click.progressbar(
        length=total,
        label="submitting",
        file=sys.stderr,
        hidden=sys.stdout.isatty() or not sys.stderr.isatty(),
    )
    try:
        with progress:
            while chunk := list(islice(jobs, CHUNK)):
                ids = producer.submit_many(chunk, timeout_s=timeout, chunk=CHUNK)
                print_ids(ids)
                submitted += len(ids)
                progress.update(len(ids))
    except FleetscaleError as exc:
        part = getattr(exc, "submitted", [])  # the batches of the chunk that went in
        print_ids(part)
        fail(_stopped_part_way(exc, submitted + len(part), total), exit_code_for(exc))
    return submitted


def _stopped_part_way(exc: FleetscaleError, submitted: int, total: int) -> str:
    """The error of a chunk, told in this command's terms: how many of all its jobs went
    in, their ids being on stdout. The producer's own note counts only within the one
    chunk it was given, so it is left out."""
    reason = str(exc).partition("; the first ")[0]
    return (
        f"{reason}; {submitted} of {counted(total, 'job')} "
        f"{noun(submitted, 'was', 'were')} submitted before this (their ids are on stdout)"
    )
