"""`fleetscale worker APP`: run one worker process."""

from __future__ import annotations

import os
import socket
import sys

import click

from fleetscale.app import load_app
from fleetscale.cli.options import (
    duration_option,
    exit_code_for,
    fail,
    logging_options,
    redis_settings,
    redis_url_option,
    reports_errors,
)
from fleetscale.cli.root import main
from fleetscale.config import MIB, WorkerSettings
from fleetscale.errors import AppImportError, FleetscaleError
from fleetscale.exitcode import ExitCode
from fleetscale.worker.lifeline import Lifeline
from fleetscale.worker.process import run_worker
from fleetscale.worker.zygote import CONTROL_FD_ENV, serve

MAX_SAMPLE_EVERY = 1_000_000
"""The sparsest fixed sampling, 1 wait in this many: fewer samples would leave a fleet's
p99 unmeasured (the adaptive 0 aims for about 200 a second)."""
MAX_PAYLOAD_BYTES = 512 * MIB
"""The largest job limit: Redis refuses a value over 512 MB (`proto-max-bulk-len`)."""


@main.command("worker")
@click.argument("app_path", metavar="APP")
@redis_url_option
@click.option("--burst", is_flag=True, help="Exit once the stream is drained.")
@duration_option(
    "--min-idle",
    default="30s",
    least_s=1,
    most_s=86_400,
    help_text="Reclaim jobs another worker has held this long without renewing",
)
@click.option(
    "--sample-every",
    type=click.IntRange(0, MAX_SAMPLE_EVERY),
    default=0,
    show_default=True,
    help="Record 1 in N job waits; 0 adapts N to the job rate.",
)
@click.option(
    "--max-batch",
    type=click.IntRange(1, 10_000),
    default=256,
    show_default=True,
    help="Most jobs taken per fetch.",
)
@duration_option(
    "--prefetch-window",
    default="10ms",
    least_s=0,
    most_s=86_400,
    help_text="Fetch only the jobs this worker expects to start within this time (a long "
    "one fetches up to --max-batch)",
)
@click.option(
    "--max-payload-bytes",
    type=click.IntRange(1, MAX_PAYLOAD_BYTES),
    default=MIB,
    show_default=True,
    help="Dead-letter jobs that encode to more than this unread; match the producers' "
    "max_payload_bytes when you raise it.",
)
@click.option("--no-telemetry", is_flag=True, help="Do not record wait and run telemetry.")
@click.option(
    "--zygote",
    is_flag=True,
    hidden=True,
    help="Fork workers on a controller's request (internal: the fork server).",
)
@click.option(
    "--warm",
    is_flag=True,
    help="Start as a warm spare: connect and register, consume only after SIGUSR1.",
)
@click.option(
    "--no-lease-renewal",
    is_flag=True,
    help="Never renew the lease of a running job: one running past --min-idle is run "
    "again by another worker. Only for fleets of jobs far shorter than --min-idle.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to start on an unsafe Redis (no AOF, evicting maxmemory-policy).",
)
@logging_options
@reports_errors
def worker_command(
    *,
    app_path: str,
    redis_url: str | None,
    burst: bool,
    min_idle: float,
    sample_every: int,
    max_batch: int,
    prefetch_window: float,
    max_payload_bytes: int,
    no_telemetry: bool,
    warm: bool,
    zygote: bool,
    no_lease_renewal: bool,
    strict: bool,
) -> None:
    """Run one worker process for APP (`module:attribute` naming a fleetscale App).

    The first SIGTERM or Ctrl-C drains: the worker stops reading, finishes and
    acknowledges what it holds, flushes telemetry and exits 0. A second exits at once.

    \b
    Example:
      fleetscale worker myproject.tasks:app --redis-url redis://localhost:6379/0
    """
    settings = WorkerSettings(
        burst=burst,
        min_idle_s=min_idle,
        sample_every=sample_every,
        max_batch=max_batch,
        prefetch_window_s=prefetch_window,
        max_payload_bytes=max_payload_bytes,
        telemetry=not no_telemetry,
        renew_leases=not no_lease_renewal,
        strict=strict,
    ).validate()
    lifeline = Lifeline.from_environ(os.environ)
    lifeline.die_with_parent()  # before the app's import, which may take a while
    try:
        app = load_app(app_path)
    except AppImportError as exc:
        lifeline.report(f"error {exc}")
        raise
    redis = redis_settings(redis_url)
    if app.redis_url is None:  # a task's follow-up submits go where this worker reads
        app.redis_url = redis.url

    def run(warm: bool, lifeline: Lifeline) -> ExitCode:
        # Also in a worker forked by the zygote, which no `reports_errors` wraps.
        try:
            return run_worker(app, redis, settings, warm=warm, lifeline=lifeline)
        except FleetscaleError as exc:
            fail(str(exc), exit_code_for(exc))
            raise AssertionError("unreachable") from None

    if zygote:
        control = socket.socket(fileno=int(os.environ[CONTROL_FD_ENV]))
        sys.exit(int(serve(control, lifeline, run)))
    sys.exit(int(run(warm, lifeline)))
